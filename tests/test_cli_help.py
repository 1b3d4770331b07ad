"""The command line a newcomer reads: the commands, each command's flags, one-line errors."""

import re
import subprocess
import sys

import pytest

from rocketctr import cli

FLAGS = {
    "train": [
        "--config",
        "--train",
        "--eval",
        "--model_dir",
        "--set",
        "--bad_rows",
        "--strategy",
        "--export_dir",
        "--export",
        "--replica_index",
        "--shared_dir",
        "--synthetic_train_rows",
        "--synthetic_eval_rows",
        "--verbose",
        "--force",
    ],
    "evaluate": [
        "--model_dir",
        "--data",
        "--tower",
        "--light",
        "--output",
        "--export_dir",
        "--bad_rows",
    ],
    "predict": [
        "--model_dir",
        "--export_dir",
        "--data",
        "--output",
        "--keep",
        "--tower",
        "--light",
        "--batch_size",
        "--bad_rows",
        "--source",
        "--overwrite",
    ],
    "report": ["--model_dir", "--baseline_dir", "--test", "--output", "--bad_rows"],
    "export": ["--model_dir", "--export_dir", "--set", "--light", "--force"],
    "frontier": [
        "--model_dir",
        "--data",
        "--baseline_dir",
        "--latency_budget_ms",
        "--batch",
        "--output",
        "--bad_rows",
    ],
    "item_vectors": ["--export_dir", "--catalogue", "--output", "--id_column"],
    "summary": ["--config", "--set", "--tower", "--verbose"],
}


def _exit(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.parse(argv)
    out = capsys.readouterr()
    return exited.value.code, out.out, out.err


@pytest.mark.integration
def test_help_lists_every_command():
    proc = subprocess.run(
        [sys.executable, "-m", "rocketctr.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    for command in FLAGS:
        assert re.search(rf"^    {command}\b", proc.stdout, re.M)  # listed, with its description
    assert set(FLAGS) == set(cli.COMMANDS)


@pytest.mark.parametrize("command", list(FLAGS))
def test_each_commands_help_lists_its_flags_with_their_help(command, capsys):
    code, out, _ = _exit([command, "--help"], capsys)
    assert code == 0
    for flag in FLAGS[command]:
        assert flag in out, flag
    assert cli.COMMANDS[command][0] in out  # its description
    # Every flag has a help text: no bare "--flag VALUE" line without an explanation.
    parser = cli.build_parser()[1][command]
    assert all(a.help for a in parser._actions if a.option_strings)


def test_unknown_commands_and_flags_get_one_line_naming_the_valid_ones(capsys):
    code, _, err = _exit(["trian"], capsys)
    assert code == 2
    assert err == (
        "rocketctr: error: unknown command 'trian'; the commands are train, evaluate, predict, "
        "report, export, frontier, item_vectors, summary. Did you mean 'train'?\n"
    )
    code, _, err = _exit(["evaluate", "--model_dir=x", "--data=y", "--towr=light"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("rocketctr evaluate: error: unknown flag(s) --towr; evaluate takes ")
    assert "--tower" in err and "Did you mean --tower?" in err
    code, _, err = _exit(["predict", "--data=y"], capsys)  # --output is required
    assert code == 2 and err.count("\n") == 1 and "--output" in err
    code, _, err = _exit([], capsys)
    assert code == 2 and "train" in err and "evaluate" in err


def test_old_spellings_still_work():
    args = cli.parse(["train", "--noexport", "--set=train.batch_size=8", "--train=a,b", "--eval=c"])
    assert args.export is False and args.set == ["train.batch_size=8"]
    assert args.train == ["a", "b"] and args.eval == ["c"]
    args = cli.parse(["evaluate", "--model_dir", "d", "--eval", "x"])  # --eval: --data's old name
    assert args.data == ["x"] and args.tower == "both"


@pytest.mark.integration
def test_summary_shows_a_configs_towers_with_their_shapes():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rocketctr.cli",
            "summary",
            "--config",
            "frappe",
            "--tower",
            "light",
            "--set",
            "model.light.hidden_units=[16]",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Frappe: 10 fields of width 10 -> 100 inputs -> 16 -> 1.
    assert re.search(r"\(MLP\)\s+\(None, 16\)\s+1616\b", proc.stdout), proc.stdout
    assert "Total params: 1633" in proc.stdout
    assert "light: mlp, 3,232 FLOPs per example; hidden representations for " in proc.stdout
    assert 'Model: "booster"' not in proc.stdout
