"""The room directory from Exchange (Graph's places service): ``rooms`` imports, ``tasks`` the nightly job."""
