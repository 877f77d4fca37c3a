import pytest

from jobs.states import FINAL_STATES, IllegalTransition, JobState, check_transition, sources_for


def test_live_job_may_move_to_every_final_state():
    for final in FINAL_STATES:
        check_transition(JobState.PROCESSING, final)


@pytest.mark.parametrize("final", sorted(FINAL_STATES))
def test_final_state_never_changes_again(final):
    for target in JobState:
        with pytest.raises(IllegalTransition):
            check_transition(final, target)


def test_pending_cannot_jump_to_succeeded_without_processing():
    with pytest.raises(IllegalTransition):
        check_transition(JobState.PENDING, JobState.SUCCEEDED)


def test_sources_for_timeout_are_the_live_states():
    assert set(sources_for(JobState.TIMEOUT)) == {"pending", "processing"}
    assert sources_for(JobState.SUCCEEDED) == ["processing"]
