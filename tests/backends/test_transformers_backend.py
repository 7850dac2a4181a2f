"""The transformers backend on the bundled SmolLM2 GGUF, dequantized by transformers (loaded once per module).

Generations are greedy and at most 12 tokens. Adapters are tiny random-weight LoRAs
made here with PEFT, so they visibly change the output.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from rolecraft.backends import SamplingParams, create_backend
from rolecraft.errors import RolecraftError
from rolecraft.messages import Message
from rolecraft.settings import Settings

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from rolecraft.backends.transformers_hf import TransformersBackend  # noqa: E402

N_CTX = 512
CHAT = [Message("system", "You are a pirate."), Message("user", "Tell me about your ship.")]
GREEDY = SamplingParams(max_tokens=12, temperature=0.0, repeat_penalty=1.0)


def reply(backend: TransformersBackend, messages: list[Message] = CHAT, **changes: object) -> str:
    params = replace(GREEDY, **changes)
    return "".join(event.text for event in backend.stream(messages, params))


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TransformersBackend]:
    # Two shared cores: with other processes running, OpenMP spin-waits make two torch threads far slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    home = tmp_path_factory.mktemp("home")
    made = create_backend(Settings(backend="transformers", home=home, n_ctx=N_CTX, device="cpu", seed=1))
    yield made
    made.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def base_reply(backend: TransformersBackend) -> str:
    return reply(backend)


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    pytest.importorskip("llama_cpp")
    home = tmp_path_factory.mktemp("llama-home")
    made = create_backend(Settings(backend="llama_cpp", home=home, n_ctx=N_CTX, n_threads=1))
    yield made
    made.close()


def test_streams_a_reply_with_token_counts(backend: TransformersBackend) -> None:
    events = list(backend.stream(CHAT, GREEDY))
    last = events[-1]
    assert len(events) > 3 and "".join(e.text for e in events).strip()
    assert last.finish_reason in {"stop", "length"}
    assert last.prompt_tokens == backend.count_tokens(CHAT)
    assert 1 <= last.completion_tokens <= 12
    assert backend.capabilities.images is False and backend.context_size == N_CTX


def test_prompt_ids_are_the_llama_cpp_backends(backend: TransformersBackend, llama: object) -> None:
    conversations = [
        CHAT,
        [Message("system", "Ember, a fire mage.  Terse.\n\nRules:\n- no\tAI talk"),
         Message("user", "Héllo 👋 wie geht's? 1234567 …"), Message("assistant", " Fine.  "),
         Message("user", "日本語も話せる？ <|im_end|> tricky")],
        [Message("user", "   leading spaces and trailing\n\n\n")],
    ]
    for messages in conversations:
        assert backend.render(messages) == llama.render(messages)
        assert backend.prompt_tokens(messages) == llama.prompt_tokens(messages)
    for text in ["Hello", " naïve café", "👋🏽", "  x\n\n", "<|im_end|> is text here"]:
        assert backend.tokenize(text) == llama.tokenize(text)
    assert backend.count_message(CHAT[1]) == llama.count_message(CHAT[1])


def test_greedy_start_agrees_with_llama_cpp(backend: TransformersBackend, llama: object, base_reply: str) -> None:
    # Same Q4_1 weights, but llama.cpp multiplies with 8-bit quantized activations: logits differ by up to ~1,
    # so near-ties can flip. On this prompt the first dozen tokens agree.
    theirs = "".join(e.text for e in llama.stream(CHAT, GREEDY))
    assert backend.tokenize(base_reply)[:8] == llama.tokenize(theirs)[:8]


def test_seed_makes_sampling_reproducible(backend: TransformersBackend) -> None:
    sampled = {"temperature": 0.9, "top_k": 40, "top_p": 0.95, "repeat_penalty": 1.1}
    first = reply(backend, seed=7, **sampled)
    assert reply(backend, seed=7, **sampled) == first
    assert len({first, *(reply(backend, seed=s, **sampled) for s in (8, 9))}) > 1


def test_stop_sequences_end_the_reply_and_are_not_emitted(backend: TransformersBackend, base_reply: str) -> None:
    for stop in (base_reply[6:10], base_reply[-5:-1]):
        events = list(backend.stream(CHAT, replace(GREEDY, stop=["never appears", stop])))
        assert "".join(e.text for e in events) == base_reply[:base_reply.index(stop)]
        assert events[-1].finish_reason == "stop"
    almost = "".join(e.text for e in backend.stream(CHAT, replace(GREEDY, stop=["Black Sheep"])))
    assert almost == base_reply  # text held back as a possible stop sequence is emitted once it is not one


def test_max_tokens_is_capped_by_the_context_and_overflow_is_refused(backend: TransformersBackend) -> None:
    filler = [Message("user", "word " * 480)]
    spare = N_CTX - backend.count_tokens(filler)
    assert 0 < spare < 12
    last = list(backend.stream(filler, GREEDY))[-1]
    assert last.completion_tokens <= spare
    with pytest.raises(RolecraftError) as caught:
        list(backend.stream([Message("user", "word " * 600)], GREEDY))
    assert caught.value.code == "context_overflow"


def test_role_constraints_ban_and_boost_phrases(backend: TransformersBackend, base_reply: str) -> None:
    word = base_reply.split()[0]
    banned = reply(backend, banned_phrases=[word])
    assert banned.strip() and word not in banned
    assert reply(backend, boost_phrases=["Arr, matey"], boost_strength=8.0).startswith("Arr, matey")


def test_json_schema_is_refused_clearly(backend: TransformersBackend) -> None:
    with pytest.raises(RolecraftError) as caught:
        list(backend.stream(CHAT, replace(GREEDY, json_schema={"type": "object"})))
    assert caught.value.code == "unsupported_parameter" and "transformers" in caught.value.message


def test_from_loaded_wraps_a_model_in_memory(backend: TransformersBackend, base_reply: str, tmp_path: Path) -> None:
    wrapped = TransformersBackend.from_loaded(backend.model, backend.tokenizer, Settings(home=tmp_path, n_ctx=N_CTX))
    assert wrapped.prompt_tokens(CHAT) == backend.prompt_tokens(CHAT)
    assert reply(wrapped) == base_reply


def _lora(model: object, folder: Path, seed: int) -> object:
    torch.manual_seed(seed)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    tuned = peft.get_peft_model(model, config)
    tuned.save_pretrained(str(folder), save_embedding_layers=False)
    return tuned


@pytest.fixture(scope="module")
def adapters(backend: TransformersBackend, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    assert backend.adapters.peft is None, "copy the base before any adapter is injected into it"
    root = tmp_path_factory.mktemp("adapters")
    tuned = _lora(copy.deepcopy(backend.model), root / "a", seed=1)
    _lora(copy.deepcopy(backend.model), root / "b", seed=2)
    from transformers import LlamaConfig, LlamaForCausalLM

    tiny = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=4)
    _lora(LlamaForCausalLM(tiny), root / "other-base", seed=3)
    return {"a": root / "a", "b": root / "b", "other": root / "other-base", "tuned": tuned}


def test_adapter_for_another_base_is_refused_and_leaves_the_base_intact(
    backend: TransformersBackend, adapters: dict, base_reply: str
) -> None:
    with pytest.raises(RolecraftError) as caught:
        reply(backend, adapter=str(adapters["other"]))
    assert caught.value.code == "invalid_adapter" and caught.value.param == "adapter"
    assert str(adapters["other"]) in caught.value.message and "size mismatch" in caught.value.message
    assert reply(backend) == base_reply


def test_adapters_switch_per_request_without_reloading(
    backend: TransformersBackend, adapters: dict, base_reply: str
) -> None:
    with_a = reply(backend, adapter=str(adapters["a"]))
    model = backend.model
    with_b = reply(backend, adapter=str(adapters["b"]))
    assert len({base_reply, with_a, with_b}) == 3
    assert reply(backend) == base_reply
    assert reply(backend, adapter=str(adapters["a"])) == with_a
    assert reply(backend, adapter=None) == base_reply
    assert backend.model is model and len(backend.adapters.peft.peft_config) == 2
    (backend.adapters.folder / "a").parent.mkdir(parents=True, exist_ok=True)
    (backend.adapters.folder / "a").symlink_to(adapters["a"])
    assert reply(backend, adapter="a") == with_a  # relative to <home>/adapters, the same adapter
    assert len(backend.adapters.peft.peft_config) == 2
    with pytest.raises(RolecraftError, match="size mismatch"):
        reply(backend, adapter=str(adapters["other"]))
    assert reply(backend, adapter=str(adapters["b"])) == with_b


def test_a_peft_model_in_memory_serves_its_adapter_by_name(
    backend: TransformersBackend, adapters: dict, base_reply: str, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path, n_ctx=N_CTX)
    trained = TransformersBackend.from_loaded(adapters["tuned"], backend.tokenizer, settings)
    assert reply(trained, adapter="default") == reply(backend, adapter=str(adapters["a"]))
    assert reply(trained) == base_reply


def test_folders_that_are_not_adapters_are_refused(backend: TransformersBackend, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{not json", encoding="utf-8")
    (broken / "adapter_model.safetensors").write_bytes(b"")
    for folder, reason in [(tmp_path, "adapter_config.json"), (tmp_path / "missing", "no such folder"),
                           (broken, "adapter_config.json")]:
        with pytest.raises(RolecraftError) as caught:
            reply(backend, adapter=str(folder))
        assert caught.value.code == "invalid_adapter" and reason in caught.value.message


def test_models_that_cannot_be_found_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cases = [("nobody-here/no-such-model", "model_unavailable"), (str(tmp_path), "invalid_model"),
             ("no such model", "model_not_found")]
    for model, code in cases:
        with pytest.raises(RolecraftError) as caught:
            create_backend(Settings(backend="transformers", home=tmp_path, model=model))
        assert caught.value.code == code and caught.value.param == "model"
