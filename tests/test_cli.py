"""``python -m hdd_lib``: distill then evaluate on the embedded digits; one-line errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hdd_lib.cli import main
from hdd_lib.synset import SyntheticSet

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--ipc", "1", "--iterations", "3", "--batch_real", "16", "--set", "model.width=16", "--no_progress"]


def test_distill_then_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["distill", "--dataset", "digits", "--strategy", "dm", "--loss", "hdd", *TINY,
               "--set", "loss.k=2.0", "--out", str(out)])
    assert rc == 0
    syn = SyntheticSet.load(out / "synset.pt")
    assert syn.images.shape == (10, 1, 1, 8, 8)
    record = json.loads((out / "distill.json").read_text())
    assert record["config"]["loss"]["k"] == 2.0 and record["data"]["dataset"] == "digits" and record["data"]["digest"]
    assert record["data_copy"] == "scikit-learn digits (8x8)" and record["provenance"]["git_commit"]
    assert record["provenance"]["seconds"] > 0 and record["code"]
    assert (out / "checkpoint.pt").exists()
    metrics = tmp_path / "metrics.json"
    rc = main(["evaluate", "--dataset", "digits", "--synset", str(out / "synset.pt"), "--num_eval", "2",
               "--epochs", "2", "--set", "model.width=16", "--out", str(metrics), "--no_progress"])
    assert rc == 0
    m = json.loads(metrics.read_text())
    assert len(m["results"]["convnet"]["accs"]) == 2 and m["distill_config"]["method"] == "dm_hdd"


def test_method_from_params_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["distill", "--method", "idm_hdd", *TINY, "--set", "strategy.model_train_steps=1",
                 "--out", str(tmp_path)]) == 0
    config = json.loads((tmp_path / "distill.json").read_text())["config"]
    assert config["strategy"]["name"] == "idm" and config["loss"]["k"] == 2.4 and config["lr_img"] == 0.5


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys):
    cases = [
        (["distill", "--dataset", "imagenet21k", "--out", str(tmp_path / "a")], "unknown dataset 'imagenet21k'"),
        (["distill", "--dataset", "cifar10", "--data_root", str(tmp_path / "empty"), "--out", str(tmp_path / "b")],
         str(tmp_path / "empty")),
        (["distill", "--ipc", "0", "--out", str(tmp_path / "c")], "ipc must be >= 1, got ipc=0"),
        (["distill", "--set", "loss.k", "--out", str(tmp_path / "d")], "--set expects key=value"),
        (["distill", "--set", "loss.kk=1", "--out", str(tmp_path / "e")], "unknown key(s) loss.kk"),
        (["distill", "--loss", "mmd", "--out", str(tmp_path / "f")], "unknown loss 'mmd'"),
        (["distill", "--method", "nope", "--out", str(tmp_path / "g")], "unknown method 'nope'"),
        (["evaluate", "--synset", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "m.json")], "missing.pt"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        assert needle in one_line(capsys.readouterr().err), (argv, needle)


def test_out_that_is_a_file_fails_before_any_work(tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    assert main(["distill", *TINY, "--out", str(tmp_path / "taken")]) == 2
    assert "is a file, not a folder" in one_line(capsys.readouterr().err)
    assert main(["distill", *TINY, "--out", str(tmp_path / "taken" / "sub")]) == 2
    assert "cannot be written" in one_line(capsys.readouterr().err)


def test_diverging_run_fails_and_writes_no_result(tmp_path, capsys):
    rc = main(["distill", "--ipc", "1", "--iterations", "1", "--lr_img", "1e38", "--set", "loss.lam=1e6",
               "--set", "model.width=16", "--no_progress", "--out", str(tmp_path)])
    assert rc == 1
    assert "synthetic images became NaN or inf" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "synset.pt").exists() and not (tmp_path / "checkpoint.pt").exists()


def test_non_finite_or_damaged_synsets_are_refused(tmp_path, capsys):
    images = torch.zeros(10, 1, 1, 8, 8)
    images[3, 0, 0, 2, 2] = float("inf")
    SyntheticSet(images).save(tmp_path / "inf.pt")
    assert main(["evaluate", "--synset", str(tmp_path / "inf.pt"), "--epochs", "1", "--num_eval", "1",
                 "--out", str(tmp_path / "m.json")]) == 2
    assert "1 NaN or inf values" in one_line(capsys.readouterr().err) and not (tmp_path / "m.json").exists()
    torch.save({"format": "hdd_lib.synset/1", "factor": 1}, tmp_path / "noimages.pt")
    assert main(["evaluate", "--synset", str(tmp_path / "noimages.pt"), "--out", str(tmp_path / "m.json")]) == 2
    assert "has no images" in one_line(capsys.readouterr().err)


def test_resume_with_another_dataset_is_refused(tmp_path, capsys):
    assert main(["distill", *TINY, "--out", str(tmp_path)]) == 0
    fake = tmp_path / "data"
    rc = main(["distill", *TINY, "--dataset", "fashionmnist", "--data_root", str(fake), "--resume",
               "--out", str(tmp_path)])
    assert rc == 2  # no Fashion-MNIST here: refused for the missing data, never resumed under its name
    shared = ROOT.parent / "shared" / "datasets"
    if (shared / "FashionMNIST" / "raw").is_dir():
        capsys.readouterr()
        rc = main(["distill", *TINY, "--dataset", "fashionmnist", "--data_root", str(shared), "--resume",
                   "--out", str(tmp_path)])
        assert rc == 2 and "cannot resume" in one_line(capsys.readouterr().err)


def test_check_validates_params_yaml(tmp_path, monkeypatch, capsys):
    import shutil

    import yaml

    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["prune"]["ratios"] = [1.0, "abc"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 2
    assert "prune.ratios[1] must be a number" in one_line(capsys.readouterr().err)


def test_module_entry_point_prints_one_line_without_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "hdd_lib", "distill", "--ipc", "1", "--iterations", "1",
                        "--lr_img", "1e38", "--set", "loss.lam=1e6", "--no_progress", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and one_line(r.stderr)
    r = subprocess.run([sys.executable, "-m", "hdd_lib", "distill", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--lr_img" in r.stdout and "--resume" in r.stdout


@pytest.mark.parametrize("flag", ["--debug", None])
def test_debug_shows_the_traceback(tmp_path, flag, monkeypatch):
    env_debug = flag is None
    if env_debug:
        monkeypatch.setenv("HDD_DEBUG", "1")
    argv = ["distill", "--ipc", "0", "--out", str(tmp_path)] + ([flag] if flag else [])
    with pytest.raises(ValueError, match="ipc must be >= 1"):
        main(argv)


def test_set_values_are_read_as_params_yaml_reads_them():
    from hdd_lib.cli import _overrides

    # `amp: off` in params.yaml is the string "off"; `--set amp=off` must mean the same (YAML 1.1 would say False)
    assert _overrides(["amp=off", "loss.lam=1e6", "loss.k=2", "compile=true", "device=cpu"]) == {
        "amp": "off", "loss": {"lam": 1e6, "k": 2}, "compile": True, "device": "cpu"}
    assert isinstance(_overrides(["lr_img=1e-3"])["lr_img"], float)
def test_pretrain_builds_a_methods_pool_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    args = ["pretrain", "--dataset", "digits", "--method", "ncfm_hdd", "--out", str(tmp_path), "--no_progress",
            "--set", "strategy.pretrain.nets=2", "--set", "strategy.pretrain.epochs=1", "--set", "model.width=8"]
    assert main(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net000.pt", "net001.pt"]
    assert "wrote" in capsys.readouterr().out and torch.load(tmp_path / "net001.pt")["built_for"]["pretrain"]["nets"] == 2
    before = (tmp_path / "net001.pt").stat().st_mtime_ns
    assert main(args) == 0 and (tmp_path / "net001.pt").stat().st_mtime_ns == before
    assert main(["pretrain", "--dataset", "digits", "--method", "dm", "--out", str(tmp_path / "x")]) == 2
    assert "embeds with no pretrained pool" in one_line(capsys.readouterr().err)
