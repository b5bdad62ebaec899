"""The DAG builder: edges, constants, fan-in, aliases, errors, ids."""

from __future__ import annotations

import pytest

from lifecycle._workflow import Task, TaskCall, WorkflowError, task, workflow
from lifecycle._workflow._ids import Ref, parse_memory

from .tasks import add, complex_pipeline, get_number, reduce_list, sales_pipeline


def test_return_value_passed_on_is_an_edge() -> None:
    dag = sales_pipeline.build()
    assert list(dag.tasks) == ["fetch_data", "calculate_total"]
    assert dag.tasks["calculate_total"].depends_on == ("fetch_data",)
    assert dag.tasks["calculate_total"].args == (Ref("fetch_data"),)
    assert dag.name == "daily_sales_report"


def test_complex_pipeline_matches_the_seed_graph() -> None:
    dag = complex_pipeline.build()
    assert dag.name == "Complex Pipeline"
    assert set(dag.tasks) == {
        "my_number",
        "first_addition",
        *(f"num_{i}" for i in range(5)),
        "reduce_list",
        "add_one",
        "add_two",
        "add_three",
    }
    first = dag.tasks["first_addition"]
    assert first.depends_on == ("my_number",)
    assert first.args == (Ref("my_number"), 13)  # 13 is a constant input
    assert dag.tasks["reduce_list"].depends_on == tuple(f"num_{i}" for i in range(5))
    for name, const in (("add_one", 1), ("add_two", 2), ("add_three", 3)):
        assert dag.tasks[name].args == (Ref("reduce_list"), const)
    assert dag.downstream({"num_3"}) == {"num_3", "reduce_list", "add_one", "add_two", "add_three"}
    mermaid = dag.to_mermaid()
    assert mermaid.startswith("graph LR")
    assert "t_num_0[num_0] --> t_reduce_list[reduce_list]" in mermaid
    assert "((13))" in mermaid


def test_same_task_twice_without_alias_names_the_task() -> None:
    @workflow(name="dup")
    def dup() -> None:
        add(get_number(), 1)
        add(get_number().alias("other"), 2)

    with pytest.raises(WorkflowError, match=r"task 'add' is called 2 times.*\.alias\(\)"):
        dup.build()
    with pytest.raises(ValueError, match="add"):  # WorkflowError is a ValueError, as the seed says
        dup.build()


def test_alias_clashing_with_another_call_is_a_duplicate() -> None:
    @workflow(name="clash")
    def clash() -> None:
        get_number()
        add(1, 2).alias("get_number")

    with pytest.raises(WorkflowError) as raised:
        clash.build()
    assert str(raised.value).startswith(
        "alias 'get_number' is used by 2 task calls in workflow 'clash': "
        "task 'get_number' (its own name), task 'add'"
    )


def test_alias_used_twice_is_named_as_an_alias() -> None:
    """It used to say "task 'x' is called 2 times", though no task is called x."""

    @workflow(name="twice")
    def twice() -> None:
        add(1, 2).alias("x")
        get_number().alias("x")

    with pytest.raises(WorkflowError) as raised:
        twice.build()
    message = str(raised.value)
    assert message.startswith(
        "alias 'x' is used by 2 task calls in workflow 'twice': task 'add', task 'get_number'"
    )
    assert "is called" not in message


def test_a_body_that_raises_is_a_workflow_error_saying_where() -> None:
    @workflow(name="boom")
    def boom() -> None:
        get_number()
        raise RuntimeError("no such table")

    with pytest.raises(WorkflowError) as raised:
        boom.build()
    assert str(raised.value).startswith(
        "workflow 'boom': its body raised RuntimeError: no such table (test_dag.py, line "
    )
    assert isinstance(raised.value.__cause__, RuntimeError)


@pytest.mark.parametrize("timeout", [-5, 0, float("nan"), float("inf"), True, "10"])
def test_task_timeout_is_checked_where_the_task_is_defined(timeout: object) -> None:
    def slow() -> None: ...

    with pytest.raises(WorkflowError, match=r"task 'slow': timeout must be a positive number"):
        task(timeout=timeout)(slow)  # type: ignore[call-overload]

    assert task(timeout=0.5)(lambda: None).timeout == 0.5


def test_nested_containers_and_keywords_are_edges() -> None:
    @workflow(name="nested")
    def nested() -> None:
        a = get_number().alias("a")
        b = get_number().alias("b")
        reduce_list(*[a, b]).alias("star")
        report_all(items=[a, {"b": b, "k": 1}], label="x")

    @task()
    def report_all(items: list[object], label: str) -> str:
        return f"{label}: {items}"

    dag = nested.build()
    spec = dag.tasks["report_all"]
    assert spec.depends_on == ("a", "b")
    assert spec.kwargs == {"items": [Ref("a"), {"b": Ref("b"), "k": 1}], "label": "x"}
    assert dag.tasks["star"].depends_on == ("a", "b")


def test_outside_a_workflow_a_task_is_a_plain_function() -> None:
    assert add(1, 2) == 3
    assert reduce_list(1, 2, 3) == 6
    assert isinstance(add, Task)
    assert add.__name__ == "add"
    assert add.function == "tests.workflow.tasks.add"


def test_bare_decorators_and_options() -> None:
    @task
    def bare() -> int:
        return 1

    @task(name="renamed", timeout=2.5, memory_limit="512Mi", env={"A": "1"})
    def opts() -> int:
        return 2

    @workflow
    def plain() -> None:
        bare()
        opts()

    assert plain.name == "plain"
    dag = plain.build()
    assert list(dag.tasks) == ["bare", "renamed"]
    spec = dag.tasks["renamed"].task
    assert (spec.timeout, spec.memory_limit, spec.env) == (2.5, 512 * 2**20, {"A": "1"})
    record = dag.tasks["renamed"].record()
    assert record["memory_limit"] == 512 * 2**20


def test_memory_sizes() -> None:
    assert parse_memory("2G") == 2 * 10**9
    assert parse_memory("1.5GiB") == int(1.5 * 2**30)
    assert parse_memory(1024) == 1024
    assert parse_memory(None) is None
    with pytest.raises(WorkflowError, match="not a size"):
        parse_memory("lots")
    with pytest.raises(WorkflowError, match="positive"):
        parse_memory(0)


def test_using_a_result_in_the_body_is_a_clear_error() -> None:
    @workflow(name="misuse")
    def misuse() -> None:
        if get_number():
            add(1, 2)

    with pytest.raises(WorkflowError, match="does not exist while the workflow is being defined"):
        misuse.build()


def test_definition_errors() -> None:
    @workflow(name="empty")
    def empty() -> None:
        return None

    with pytest.raises(WorkflowError, match="calls no @task"):
        empty.build()

    kept: list[TaskCall] = []

    @workflow(name="leak")
    def leak() -> None:
        kept.append(get_number())

    leak.build()

    @workflow(name="uses_leak")
    def uses_leak() -> None:
        add(kept[0], 1)

    with pytest.raises(WorkflowError, match="another workflow definition"):
        uses_leak.build()
    with pytest.raises(WorkflowError, match="after the workflow body returned"):
        kept[0].alias("late")

    @workflow(name="bad_alias")
    def bad_alias() -> None:
        get_number().alias("a/b")

    with pytest.raises(WorkflowError, match="without '/'"):
        bad_alias.build()

    with pytest.raises(WorkflowError, match="no remote platform"):
        sales_pipeline()

    @workflow(name="outer")
    def outer() -> None:
        sales_pipeline.build()

    with pytest.raises(WorkflowError, match="inside another workflow body"):
        outer.build()


def test_task_ids_are_stable_and_change_with_the_definition() -> None:
    one, two = complex_pipeline.build(), complex_pipeline.build()
    assert [s.id for s in one] == [s.id for s in two]
    assert one.fingerprint == two.fingerprint
    assert one.tasks["add_one"].id.startswith("add_one@")

    @workflow(name="Complex Pipeline")
    def changed() -> None:
        add(get_number().alias("my_number"), 14).alias("first_addition")  # 13 → 14

    three = changed.build()
    assert three.tasks["my_number"].id == one.tasks["my_number"].id
    assert three.tasks["first_addition"].id != one.tasks["first_addition"].id
    # the registry of workflows by name now holds the last definition: restore the module's
    workflow("Complex Pipeline")(complex_pipeline.fn)
