"""The seed's "Building Complex Pipelines" example, unchanged apart from the import line.

    python examples/complex_pipeline.py

``num_0`` … ``num_4`` run in parallel, ``reduce_list`` fans them in, and ``add_one`` /
``add_two`` / ``add_three`` fan out again. Then the example shows a rerun from one task: the
tasks upstream of ``reduce_list`` are taken from the cache (``cached_from`` the first run).
"""

from lifecycle import task, workflow  # seed: from datatailr import workflow, task


@task()
def get_number():
    return 42


@task()
def add(a, b):
    return a + b


@task()
def reduce_list(*numbers):
    return sum(numbers)


@workflow("Complex Pipeline")
def complex_pipeline():
    total_1 = add(get_number().alias("my_number"), 13).alias("first_addition")  # noqa: F841
    total_2 = reduce_list(*[get_number().alias(f"num_{i}") for i in range(5)])
    add(total_2, 1).alias("add_one")
    add(total_2, 2).alias("add_two")
    add(total_2, 3).alias("add_three")


if __name__ == "__main__":
    from lifecycle import Workflow

    print(complex_pipeline.to_mermaid())
    run = complex_pipeline(local_run=True)

    wf = Workflow(name="Complex Pipeline", get_existing=True)
    for name in ("first_addition", "reduce_list", "add_one", "add_two", "add_three"):
        print(name, "->", wf.result(run_id=run.run_id, task_name=name))

    again = wf.rerun(run.run_id, from_task="reduce_list", progress=False)
    for t in wf.run_details(again["run_id"])["tasks"]:
        cached = f" (cached from run {t['cached_from']})" if t["cached_from"] else ""
        print(f"rerun {again['run_id']}: {t['name']} {t['state']}{cached}")
