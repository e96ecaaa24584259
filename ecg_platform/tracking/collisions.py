"""Writes that lost a race to another writer of the same row: the store refuses the second insert
of an alias or a dataset (a unique constraint), although what it asked for now exists."""

from __future__ import annotations

from mlflow.exceptions import MlflowException

# how PostgreSQL and SQLite word a unique-constraint refusal
COLLISION_SIGNS = ("duplicate key value violates unique constraint", "UNIQUE constraint failed")
MAX_COLLISIONS = 10  # a write sits out this many collisions before it gives up


def is_collision(error: MlflowException) -> bool:
    """Whether the store refused a write because another writer's identical row landed first."""
    return any(sign in str(error) for sign in COLLISION_SIGNS)
