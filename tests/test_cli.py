from typer.testing import CliRunner

import chromafuse
from chromafuse.cli import app


def test_version_option_prints_the_package_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"chromafuse {chromafuse.__version__}"


def test_folder_weight_needs_name_and_number():
    result = CliRunner().invoke(app, ["train", ".", "--out", "x", "--steps", "1", "--folder-weight", "bsds500=lots"])
    assert result.exit_code == 2 and "--folder-weight 'bsds500=lots': expected NAME=FACTOR with a number" in result.output


def test_export_records_name_saturation_and_card_fields(tmp_path, tiny_checkpoint):
    from chromafuse import Colorizer
    from chromafuse.models.checkpoint import read_checkpoint

    target = tmp_path / "shipped.pt"
    args = ["export", str(tiny_checkpoint), str(target), "--name", "tiny-0.2", "--render-size", "64", "--saturation", "1.25"]
    args += ["--detail", "0.75", "--card", "training=huber=1,ssim=0.1 for 5 steps", "--card", "see = MODEL_CARD.md"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metadata = read_checkpoint(target).metadata
    assert metadata["card"] == {"training": "huber=1,ssim=0.1 for 5 steps", "see": "MODEL_CARD.md"}
    assert (metadata["name"], metadata["render_size"], metadata["saturation"], metadata["detail"]) == ("tiny-0.2", 64, 1.25, 0.75)
    colorizer = Colorizer.load(target, device="cpu")
    assert (colorizer.size, colorizer.saturation, colorizer.detail) == (64, 1.25, 0.75)
    assert Colorizer.load(target, device="cpu", detail=1.0).detail == 1.0  # colorize --detail 1 shows all of it


def test_export_refuses_bad_card_fields_and_settings_without_writing(tmp_path, tiny_checkpoint):
    target = tmp_path / "shipped.pt"
    result = CliRunner().invoke(app, ["export", str(tiny_checkpoint), str(target), "--card", "no equals sign"])
    assert result.exit_code == 2 and "--card 'no equals sign': expected KEY=TEXT" in result.output
    result = CliRunner().invoke(app, ["export", str(tiny_checkpoint), str(target), "--saturation", "5"])
    assert result.exit_code == 2 and "saturation must be between 0 and 4, got 5.0" in result.output
    result = CliRunner().invoke(app, ["export", str(tiny_checkpoint), str(target), "--detail", "1.5"])
    assert result.exit_code == 2 and "detail must be between 0.25 and 1 (a fraction of the render size), got 1.5" in result.output
    result = CliRunner().invoke(app, ["export", str(tiny_checkpoint), str(target), "--render-size", "100"])
    assert result.exit_code == 2 and "render size must be a multiple of 32" in result.output
    assert not target.exists()
