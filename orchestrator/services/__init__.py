"""Everything that changes a job, as keyword-only `<entity>_<action>` functions, by subdomain
(import from the module, e.g. `from orchestrator.services.jobs import job_create`):

- `jobs`: admit, start, cancel, delete a job, and move it to running or a final status;
- `rounds`: the round pipeline on Celery (round_start, client_train, round_finish);
- `recovery`: re-deliver the unfinished work of running jobs when a worker starts;
- `dataspace`: a user's uploaded CSV files;
- `accounts`: a user's API token;
- `_common`: what they share: the one way they send a task, error words, JSON-safe metrics.
"""
