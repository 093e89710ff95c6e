"""The service layer every face (CLI, web) calls: one audited, masked function per
question (:mod:`.service`), who may do what (:mod:`.permissions`), web users and
their sessions (:mod:`.users`) and sign-in throttling (:mod:`.throttle`)."""
