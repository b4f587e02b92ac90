//! Test pattern source. SKELETON: written by the test-pattern work item.
