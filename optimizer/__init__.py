"""Pure EV charging scheduler: a problem in, a schedule out (PuLP + HiGHS); no I/O, no clocks."""
