"""Teaching: the whole training step on one page (``lecture``), one step explained quantity by
quantity with its checks (``explain``), and backprop exercises that grade themselves
(``exercises``)."""
