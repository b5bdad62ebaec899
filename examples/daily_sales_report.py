"""The seed's first workflow ("How It Works"), unchanged apart from the import line.

    python examples/daily_sales_report.py

Runs it on this machine (``local_run=True``) on the default store — ``LIFECYCLE_STORE`` if set,
else ``~/.local/share/lifecycle/runs.db`` — then reads the run back through the SDK, as the
seed's "Fetching Run Logs and Results Programmatically" does.
"""

from lifecycle import task, workflow  # seed: from datatailr import workflow, task


@task()
def fetch_data():
    return {"sales": [100, 200, 150]}


@task()
def calculate_total(data):
    return sum(data["sales"])


@workflow(name="daily_sales_report")
def sales_pipeline():
    data = fetch_data()
    total = calculate_total(data)  # noqa: F841  (the seed's code, kept as written)


if __name__ == "__main__":
    # seed: from datatailr import Environment; from datatailr.scheduler.batch import Workflow
    from lifecycle import Environment, Workflow

    run = sales_pipeline(local_run=True)

    wf = Workflow(name="daily_sales_report", environment=Environment.DEV, get_existing=True)
    for past in wf.runs()[:5]:
        print(past["run_id"], past["state"], past["start_time"], "version", past["job_version"])

    details = wf.run_details(run_id=run.run_id)
    for t in details["tasks"]:
        print(t["name"], t["state"], t["id"])

    data = wf.result(run_id=run.run_id, task_name="fetch_data")
    total = wf.result(run_id=run.run_id, task_name="calculate_total")
    print("fetch_data ->", data)
    print("calculate_total ->", total)
    print(wf.logs(run_id=run.run_id, task_id=details["tasks"][0]["id"]), end="")
