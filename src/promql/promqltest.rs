//! Runner of Prometheus `promqltest` scripts (`strata test promql`). (Being written: issue 5.)
