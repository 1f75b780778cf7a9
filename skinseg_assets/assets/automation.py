"""When assets re-materialize by themselves (declarative automation, evaluated by
skinseg_automation_sensor): after what is upstream of them changes, unless a blocking check failed."""

import dagster as dg

# Rebuild when a batch is validated (or anything upstream changes), once nothing upstream is
# missing or still running, and only while no upstream blocking check is failing: a bad batch
# holds retraining back (until its file is fixed or its partition deleted) instead of reaching
# the model. Several batches landing together coalesce, since the condition waits while any of
# them is in progress. (Dagster's all_deps_blocking_checks_passed() is satisfied by any one
# passing partition, so it cannot stand in for the veto here.)
NO_FAILING_BLOCKING_CHECK_UPSTREAM = ~dg.AutomationCondition.any_deps_match(
    dg.AutomationCondition.any_checks_match(dg.AutomationCondition.check_failed(), blocking_only=True)
).with_label("an upstream blocking check failed")
# eager() counts an upstream update as handled once the asset is requested or updated. When a
# manual training run ends and then a batch is validated between the same two evaluations, the
# update loses whatever their order (dagster-io/dagster#33587) and the batch is never trained on.
# The missed-update branch below catches that case by materialization times, which Dagster compares when both
# sides are plain conditions: a dependency updated after the asset's own latest update (a run
# that updated both, dependency first, is not a miss). Like eager(), it asks once per such
# update (no retry loop after a failed run), and takes along what depends on a requested asset.
DEPENDENCY_NEWER = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated()).since(
    dg.AutomationCondition.newly_updated()
)


def eager_without_missed_updates(ignoring: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """eager(), or an update eager() missed; updates of the `ignoring` dependencies count for neither.

    The ignore is applied inside newly_true() too: Dagster's .ignore() does not reach into it, and
    the condition would then still fire when only an ignored dependency was updated.
    """

    def without_ignored(condition: dg.AutomationCondition) -> dg.AutomationCondition:
        return condition if ignoring is None else condition.ignore(ignoring)

    dependency_newer = without_ignored(DEPENDENCY_NEWER)
    update_missed = (
        (
            dependency_newer & dependency_newer.newly_true().since(dg.AutomationCondition.newly_requested())
            | dg.AutomationCondition.any_deps_match(dg.AutomationCondition.will_be_requested())
        )
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("a dependency updated after this asset's latest update")
    return without_ignored(dg.AutomationCondition.eager() | update_missed).with_label("eager, or an update eager missed")


EAGER_WITHOUT_MISSED_UPDATES = eager_without_missed_updates()
EAGER_UNLESS_BLOCKED = (EAGER_WITHOUT_MISSED_UPDATES & NO_FAILING_BLOCKING_CHECK_UPSTREAM).with_label(
    "eager, unless an upstream blocking check failed"
)
