"""Perception: what the character sees and hears, as observations a text-only model can read.

`image` decodes pictures safely and describes them (labels, faces, colours,
light, size); `audio` decodes sound clips and describes how they were said;
`stt` turns speech into words; `sources` reads media from data: URLs, files or
(online only) remote URLs. Heavy libraries load inside the functions that
need them, with an install hint when they are missing.
"""

from rolecraft.perception.audio import AudioObservation, AudioOptions, decode_audio, observe_audio
from rolecraft.perception.image import (
    DEFAULT_IMAGE_TEMPLATE,
    ImageObservation,
    ImageOptions,
    ObservationCache,
    load_image,
    observe_image,
    render_observation,
)
from rolecraft.perception.sources import MediaBytes, read_media
from rolecraft.perception.stt import available_stt, create_stt, transcribe

__all__ = [
    "DEFAULT_IMAGE_TEMPLATE",
    "AudioObservation",
    "AudioOptions",
    "ImageObservation",
    "ImageOptions",
    "MediaBytes",
    "ObservationCache",
    "available_stt",
    "create_stt",
    "decode_audio",
    "load_image",
    "observe_audio",
    "observe_image",
    "read_media",
    "render_observation",
    "transcribe",
]
