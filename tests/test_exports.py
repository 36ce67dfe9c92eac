import bulkrevoke


def test_public_names_are_pinned():
    assert sorted(bulkrevoke.__all__) == sorted(
        [
            "BulkRevokeError",
            "ConfigError",
            "InputError",
            "RateLimit",
            "RetryPolicy",
            "RunConfig",
            "RunResult",
            "SafetyStop",
            "Status",
            "__version__",
            "revoke",
            "revoke_async",
        ]
    )
    for name in bulkrevoke.__all__:
        assert hasattr(bulkrevoke, name)


def test_exception_tree():
    assert issubclass(bulkrevoke.InputError, bulkrevoke.BulkRevokeError)
    assert issubclass(bulkrevoke.ConfigError, bulkrevoke.BulkRevokeError)
    assert issubclass(bulkrevoke.SafetyStop, bulkrevoke.BulkRevokeError)
    assert bulkrevoke.SafetyStop.exit_code == 3
    assert bulkrevoke.InputError.exit_code == bulkrevoke.ConfigError.exit_code == 2
