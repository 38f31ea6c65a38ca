from services.rules.clock import DeadlineClock


def test_pops_only_due_dealers_in_time_order_and_drops_replaced_deadlines():
    clock = DeadlineClock()
    clock.schedule("a", 30.0)
    clock.schedule("b", 10.0)
    clock.schedule("c", 20.0)
    clock.schedule("a", 5.0)  # replaces 30
    clock.schedule("c", None)  # nothing left to wait for
    assert clock.next_time() == 5.0
    assert clock.pop_due(10.0) == [("a", 5.0), ("b", 10.0)]
    assert clock.pop_due(100.0) == []
    assert len(clock) == 0 and clock.next_time() is None
