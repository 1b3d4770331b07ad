"""Two-stage KD: the booster of a finished run, frozen, teaches a light net trained after it.

The classic alternative to co-training (Hinton et al. 2015): train the booster first (any
run with a booster), then a `light_only` run with `distill.teacher_dir` pointing at it (or
at several such runs: their boosters' mean logit teaches). Each teacher's latest checkpoint
(its selected epoch) is restored into a model built from its own config; they are the
student's `RunTeacher` (distill/teacher.py), with the run's methods, weights and schedule.
Nothing of a teacher is trained or checkpointed with the student. Each step costs a forward
pass of each teacher's booster plus the light net's step.
"""

from __future__ import annotations

from rocketctr.config.core import Config, ConfigError
from rocketctr.distill.teacher import RunTeacher
from rocketctr.runs.rundir import restore_run


def load_teacher(config: Config) -> RunTeacher | None:
    """The frozen teacher of `distill.teacher_dir` (one run dir, or several whose boosters'
    mean logit teaches), or None if it is not set.

    Raises:
        ConfigError: the run is not light_only, also codistills, or a teacher dir holds no
            finished run with a booster on the same schema.
    """
    d = config.distill
    if d.teacher_dir is None:
        return None
    if d.mode != "light_only":
        raise ConfigError(
            "distill.teacher_dir (two-stage KD) trains a light net from a finished booster: "
            f"distill.mode must be 'light_only'. Received: {d.mode!r}"
        )
    if d.codistill_replicas > 1:
        raise ConfigError(
            "distill.teacher_dir and distill.codistill_replicas > 1 exclude each other."
        )
    teachers = []
    for run_dir in d.teacher_dir:
        teacher, teacher_config, checkpoint, _ = restore_run(run_dir, error=ConfigError)
        if not teacher.has_booster:
            raise ConfigError(f"distill.teacher_dir {run_dir} is a light_only run: no booster.")
        if teacher_config.schema != config.schema:
            raise ConfigError(
                f"distill.teacher_dir {run_dir} was trained on schema "
                f"{teacher_config.schema!r}, this run on {config.schema!r}."
            )
        teacher.trainable = False
        print(f"Two-stage KD: teacher booster from {checkpoint}")
        teachers.append(teacher)
    return RunTeacher(*teachers)
