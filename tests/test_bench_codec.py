"""`python -m sdk bench codec` per stream kind: a face-prior model's semantic stream is scored like the
learned-keypoint stream, on the same frames, against the same (shared) H.264 points."""
import pytest
import torch

from sdk.bench.codec import format_report, format_summary, run_codec_bench
from sdk.cli import build_parser
from sdk.errors import SdkError
from sdk.models import TalkingHeadModel, get_config
from sdk.pipeline import TalkingHeadPipeline

pytestmark = pytest.mark.usefixtures("single_thread")


def _pipeline(name: str) -> TalkingHeadPipeline:
    torch.manual_seed(0)
    return TalkingHeadPipeline(TalkingHeadModel(get_config(name)).eval())


def test_semantic_and_learned_streams_share_the_h264_points(prepared_small):
    cache: dict = {}
    options = dict(max_clips=1, max_frames=6, quality_stride=2, crfs=(51, 30), with_akd=False, h264_cache=cache)
    with torch.inference_mode():
        semantic = run_codec_bench(_pipeline("fomm-tiny-prior"), "00" * 32, prepared_small, "test",
                                   ["default", "fine"], **options)
        learned = run_codec_bench(_pipeline("dagan++-tiny"), "00" * 32, prepared_small, "test", None, **options)
    assert semantic.stream_kind == "semantic" and learned.stream_kind == "keypoints"
    assert [row.name for row in semantic.presets] == ["default", "fine"]
    assert [row.name for row in learned.presets][:2] == ["default", "low"]  # every preset of its kind
    assert semantic.clips == learned.clips and semantic.quality_frames == learned.quality_frames == 3
    for row in semantic.presets:
        assert row.kbps > 0 and row.quality["frames"] == 3 and set(row.code_error) == {"pose", "expression"}
    assert set(learned.presets[0].code_error) == {"keypoints", "jacobians"}
    assert "jacobians" not in next(row for row in learned.presets if row.name == "no-jacobians").code_error
    # The semantic default (E = 16, coarse steps) is smaller than the learned default.
    assert semantic.presets[0].kbps < learned.presets[0].kbps
    for ours, theirs in zip(semantic.h264, learned.h264):
        assert ours.size == theirs.size and ours.ladder[0] is theirs.ladder[0]  # coded once
        assert set(ours.ratios) == {"psnr", "ssim"}
    assert semantic.headline_ratio == semantic.h264[0].ratios["psnr"]
    text = format_report(semantic)
    assert "semantic stream" in text and "pose err" in text and "codec fine" in text
    summary = format_summary([learned, semantic])
    assert "keypoints" in summary and "semantic" in summary and "at 128²" in summary


def test_bench_codec_models_and_presets_are_checked(prepared_small):
    args = build_parser().parse_args(["bench", "codec"])
    assert args.models == ["default", "prior"] and args.presets is None
    assert build_parser().parse_args(["bench", "codec", "--model", "default"]).models == ["default"]
    with pytest.raises(SdkError, match="unknown codec preset.*semantic stream"):
        run_codec_bench(_pipeline("fomm-tiny-prior"), "00" * 32, prepared_small, presets=["no-jacobians"])
    with pytest.raises(SdkError, match="hybrid"):
        run_codec_bench(_pipeline("fomm-tiny-hybrid"), "00" * 32, prepared_small)
