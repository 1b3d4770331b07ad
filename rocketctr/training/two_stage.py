"""Two-stage KD: the booster of a finished run, frozen, teaches a light net trained after it.

The classic alternative to co-training (Hinton et al. 2015): train the booster first (any
run with a booster), then a `light_only` run with `distill.teacher_dir` pointing at it. The
teacher's latest checkpoint (its selected epoch) is restored into a model built from its
own config; it is the student's `RunTeacher` (distill/teacher.py), with the run's methods,
weights and schedule. Nothing of the teacher is trained or checkpointed with the student.
Each step costs a booster forward pass plus the light net's step.
"""

from __future__ import annotations

from rocketctr.config.core import Config, ConfigError
from rocketctr.distill.teacher import RunTeacher
from rocketctr.runs.rundir import restore_run


def load_teacher(config: Config) -> RunTeacher | None:
    """The frozen teacher of `distill.teacher_dir`, or None if it is not set.

    Raises:
        ConfigError: the run is not light_only, also codistills, or the teacher dir holds no
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
    teacher, teacher_config, checkpoint, _ = restore_run(d.teacher_dir, error=ConfigError)
    if not teacher.has_booster:
        raise ConfigError(f"distill.teacher_dir {d.teacher_dir} is a light_only run: no booster.")
    if teacher_config.schema != config.schema:
        raise ConfigError(
            f"distill.teacher_dir {d.teacher_dir} was trained on schema "
            f"{teacher_config.schema!r}, this run on {config.schema!r}."
        )
    teacher.trainable = False
    print(f"Two-stage KD: teacher booster from {checkpoint}")
    return RunTeacher(teacher)
