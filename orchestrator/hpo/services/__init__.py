"""HPO on the server, by subdomain (import from the module, e.g.
`from orchestrator.hpo.services.studies import study_create`):

- `studies`: studies whose trials are ordinary jobs on the Celery workers (`study_tick`, `StudyControl`);
- `suggestions`: changed specs suggested for a finished plain job;
- `storage`: the Optuna storage beside this project's tables;
- `_common`: the one way they send a task.

The reads they build on (a round's objective value, a job's rounds, a study's trial
records) are in `orchestrator.hpo.selectors`.
"""
