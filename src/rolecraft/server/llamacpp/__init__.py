"""llama.cpp server API: /completion, /tokenize, /detokenize, /props."""
