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
# UPDATE_MISSED catches that case by materialization times, which Dagster compares when both
# sides are plain conditions: a dependency updated after the asset's own latest update (a run
# that updated both, dependency first, is not a miss). Like eager(), it asks once per such
# update (no retry loop after a failed run), and takes along what depends on a requested asset.
DEPENDENCY_NEWER = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated()).since(
    dg.AutomationCondition.newly_updated()
)
UPDATE_MISSED = (
    (
        DEPENDENCY_NEWER & DEPENDENCY_NEWER.newly_true().since(dg.AutomationCondition.newly_requested())
        | dg.AutomationCondition.any_deps_match(dg.AutomationCondition.will_be_requested())
    )
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("a dependency updated after this asset's latest update")
EAGER_WITHOUT_MISSED_UPDATES = (dg.AutomationCondition.eager() | UPDATE_MISSED).with_label(
    "eager, or an update eager missed"
)
EAGER_UNLESS_BLOCKED = (EAGER_WITHOUT_MISSED_UPDATES & NO_FAILING_BLOCKING_CHECK_UPSTREAM).with_label(
    "eager, unless an upstream blocking check failed"
)
