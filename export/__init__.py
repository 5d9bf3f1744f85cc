"""Exporting a trained model as on-device graphs: ONNX, TFLite (LiteRT) and Core ML, fp32 / fp16 (int8 via `quantization`).

- `python -m export --model default --format onnx,tflite,coreml --precision fp32,fp16 [--size S] --out DIR`
  (`run.run_export`): every format × precision × graph into DIR at output size S, listed in
  DIR/export.json, with a progress bar and a summary table; `--graphs sender|receiver|all` for one
  end's graphs, the face prior file copied in for face-prior models, and `--bundle android|ios`
  (`bundle.write_bundle`) laying the files out for the demo apps (see README.md).
- `python -m export verify DIR` (`verify.verify_export`): each runnable export against torch on real
  frames; Core ML structure here, `export/check_coreml_macos.py` on a Mac.
- `python -m export bench DIR` (`bench.bench_export`): per-graph latency against torch.

The graphs themselves (`sdk.runtime.graphs`) and the runtimes that load these files
(`sdk.runtime.create_backend`) live in the SDK; this package only converts and checks.
"""
