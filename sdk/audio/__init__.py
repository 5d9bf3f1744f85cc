"""Audio in (issue 13, seed 004 OSM-Net): speech -> 16 kHz mono -> log-mel -> semantic codes that drive an avatar.

- `source`: `load_audio` (WAV/MP3/FLAC/... via PyAV, resampled and mixed, noted once),
  `PacedAudioFile` (a file as a real-time microphone), `Microphone` (PortAudio via the optional
  `sounddevice`), `open_audio_source`, `list_input_devices`
- `features`: `LogMel` (torch, exportable), `MelConfig`, `WindowSpec` and the audio/frame time rule
- `codes`: pose deltas <-> codes on the avatar's pose (`speak_codes`, `neutral_code`)
- `driver`: `AudioDriver` (features -> expression -> head motion -> codes), `MotionSampling`
- `live`: `LiveAudioCoder` (streaming audio -> per-frame deltas on an audio backend, 42.5 ms lookahead,
  causal head motion; `sdk.runtime.audio_backend`), what `sdk.live.microphone` runs
- `model_file`: `save_audio_model` / `load_audio_model` (checksummed; "default" = sdk/assets/audio)
- `speak`: `speak(portrait, audio, out, SpeakConfig(...))`, the `python -m sdk speak` verb
- `cli`: `python -m sdk audio prepare|devices`, `python -m sdk speak`

The networks are in `sdk.models.audio_*`, their training in `sdk.training.audio*`, the evaluation
in `sdk.eval.audio`. Nothing here is imported eagerly (no torch or PortAudio for the CLI parser).
"""
