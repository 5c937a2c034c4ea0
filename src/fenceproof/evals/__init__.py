"""``fenceproof eval``: grade a solution against a task of evals/tasks, or run an agent on the tasks."""
