"""``python -m hdd_lib``: distill then evaluate on the embedded digits; clear errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

from hdd_lib.cli import main
from hdd_lib.synset import SyntheticSet


def test_distill_then_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["distill", "--dataset", "digits", "--method", "dm_hdd", "--ipc", "1", "--iterations", "3",
               "--batch_real", "16", "--set", "model.width=16", "--set", "hdd.k=2.0", "--out", str(out),
               "--no_progress"])
    assert rc == 0
    syn = SyntheticSet.load(out / "synset.pt")
    assert syn.images.shape == (10, 1, 1, 8, 8)
    record = json.loads((out / "distill.json").read_text())
    assert record["config"]["hdd"]["k"] == 2.0 and record["data"]["dataset"] == "digits"
    assert record["data_copy"] == "scikit-learn digits (8x8)" and record["provenance"]["git_commit"]
    assert record["timing"]["seconds"] > 0 and "data_digest" in record["provenance"]
    assert (out / "checkpoint.pt").exists()
    metrics = tmp_path / "metrics.json"
    rc = main(["evaluate", "--dataset", "digits", "--synset", str(out / "synset.pt"), "--num_eval", "2",
               "--epochs", "2", "--set", "model.width=16", "--out", str(metrics), "--no_progress"])
    assert rc == 0
    m = json.loads(metrics.read_text())
    assert len(m["results"]["convnet"]["accs"]) == 2 and m["distill_config"]["method"] == "dm_hdd"


def test_bad_input_gives_a_clear_message_and_exit_code(tmp_path, capsys):
    assert main(["distill", "--dataset", "imagenet21k", "--out", str(tmp_path)]) == 2
    assert "unknown dataset 'imagenet21k'" in capsys.readouterr().err
    assert main(["distill", "--dataset", "cifar10", "--data_root", str(tmp_path / "empty"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cifar10" in err and str(tmp_path / "empty") in err
    assert main(["distill", "--ipc", "0", "--out", str(tmp_path)]) == 2
    assert "ipc must be >= 1" in capsys.readouterr().err


def test_module_entry_point_help():
    r = subprocess.run([sys.executable, "-m", "hdd_lib", "distill", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--lr_img" in r.stdout and "--resume" in r.stdout
