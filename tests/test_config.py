import os

import pytest

from bulkrevoke.config import resolve_config
from bulkrevoke.errors import ConfigError
from bulkrevoke.values import CLUSTERS, Credentials, RateLimit, parse_columns, parse_rate, resolve_host


@pytest.mark.parametrize(
    "text, per_second",
    [
        ("100/min", 100 / 60),
        ("50/s", 50.0),
        ("20", 20.0),
        ("2.5/s", 2.5),
        ("3600/h", 1.0),
        (7, 7.0),
        ("unlimited", None),
    ],
)
def test_parse_rate(text, per_second):
    assert parse_rate(text) == RateLimit(per_second)


@pytest.mark.parametrize("bad", ["fast", "-1/s", "10/fortnight", ""])
def test_parse_rate_refuses_nonsense(bad):
    with pytest.raises(ConfigError, match="--rate"):
        parse_rate(bad)


def test_hosts_clusters_and_urls():
    assert resolve_host("EU") == CLUSTERS["eu"]
    assert resolve_host("https://example.test/") == "https://example.test"
    assert resolve_host("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert resolve_host("http://[::1]:8080") == "http://[::1]:8080"


@pytest.mark.parametrize(
    "bad",
    [
        "http://eu.api.capillarytech.com",
        "ftp://x",
        "nowhere",
        "https://user:pw@host.test",
        "https://a..b.example",
        "https://" + "x" * 64 + ".example",
    ],
)
def test_hosts_refused(bad):
    with pytest.raises(ConfigError, match="--host"):
        resolve_host(bad)


def test_columns_mapping():
    assert parse_columns(["badgemetaid=meta_id", "customerId=cust"]) == {
        "badgeMetaId": "meta_id",
        "customerId": "cust",
    }
    with pytest.raises(ConfigError, match="unknown field"):
        parse_columns(["badge=meta"])
    with pytest.raises(ConfigError, match="FIELD=HEADER"):
        parse_columns(["badgeMetaId"])


def test_precedence_flag_over_environment_over_file_over_default(tmp_path):
    config_file = tmp_path / "bulkrevoke.toml"
    config_file.write_text('host = "us"\nrate = "30/min"\nconcurrency = 4\nidentifier = "email"\n')
    env = {"BULKREVOKE_HOST": "eu"}
    config = resolve_config("x.csv", {"config": str(config_file), "rate": "10/s"}, env)
    assert config.rate == RateLimit(10.0)  # flag wins over the file
    assert config.host == CLUSTERS["eu"]  # environment wins over the file
    assert config.concurrency == 4  # file wins over the default
    assert config.identifier == "email"
    assert config.retry.max_attempts == 6  # default
    config = resolve_config("x.csv", {"config": str(config_file), "host": "apac"}, env)
    assert config.host == CLUSTERS["apac"]  # flag wins over the environment


def test_secrets_refused_in_a_file_others_can_read(tmp_path):
    config_file = tmp_path / "c.toml"
    config_file.write_text('host = "eu"\npassword = "s3cret-value"\nusername = "u"\n')
    os.chmod(config_file, 0o644)
    with pytest.raises(ConfigError, match="chmod 600") as info:
        resolve_config("x.csv", {"config": str(config_file)}, {})
    assert "s3cret-value" not in str(info.value)
    os.chmod(config_file, 0o600)
    config = resolve_config("x.csv", {"config": str(config_file)}, {})
    assert config.credentials.uses_basic
    assert "s3cret-value" not in repr(config)


def test_environment_credentials_win_over_file(tmp_path):
    config_file = tmp_path / "c.toml"
    config_file.write_text('host = "eu"\nclient_key = "file-key"\nclient_secret = "file-secret"\n')
    os.chmod(config_file, 0o600)
    env = {"BULKREVOKE_CLIENT_KEY": "env-key", "BULKREVOKE_CLIENT_SECRET": "env-secret"}
    config = resolve_config("x.csv", {"config": str(config_file)}, env)
    assert config.credentials == Credentials(client_key="env-key", client_secret="env-secret")


def test_unknown_file_setting_is_refused(tmp_path):
    config_file = tmp_path / "c.toml"
    config_file.write_text('hots = "eu"\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        resolve_config("x.csv", {"config": str(config_file)}, {})


def test_no_host_is_a_config_error_unless_dry_run_or_sandbox():
    with pytest.raises(ConfigError, match="no API host"):
        resolve_config("x.csv", {}, {})
    assert resolve_config("x.csv", {"dry_run": True}, {}).host is None
    sandbox = resolve_config("x.csv", {"sandbox": True}, {"BULKREVOKE_HOST": "eu"})
    assert sandbox.host is None and sandbox.rate == RateLimit(500.0)


def test_defaults_for_a_real_host():
    config = resolve_config("x.csv", {"host": "eu"}, {})
    assert config.rate == RateLimit(100 / 60)
    assert config.concurrency is None and config.retry.timeout == 30.0  # None: auto
    assert config.max_error_rate == 0.5


@pytest.mark.parametrize(
    "setting, value",
    [
        ("concurrency", "0"),
        ("concurrency", "2.5"),
        ("max_attempts", "x"),
        ("timeout", "-1"),
        ("max_error_rate", "1.5"),
        ("delimiter", ";;"),
        ("identifier", "phone"),
    ],
)
def test_bad_values_are_config_errors(setting, value):
    with pytest.raises(ConfigError):
        resolve_config("x.csv", {"host": "eu", setting: value}, {})


def test_mask_pii_needs_a_key():
    with pytest.raises(ConfigError, match="BULKREVOKE_PII_KEY"):
        resolve_config("x.csv", {"host": "eu", "mask_pii": True}, {})
    config = resolve_config("x.csv", {"host": "eu", "mask_pii": True}, {"BULKREVOKE_PII_KEY": "k"})
    assert config.pii_key == b"k"


@pytest.mark.parametrize("value, expected", [("auto", None), ("AUTO", None), ("8", 8), (256, 256)])
def test_concurrency_is_a_number_or_auto(value, expected):
    assert resolve_config("x.csv", {"host": "eu", "concurrency": value}, {}).concurrency == expected


@pytest.mark.parametrize("value", ["0", "257", "many", "1.5"])
def test_concurrency_out_of_range_is_refused(value):
    with pytest.raises(ConfigError, match="--concurrency"):
        resolve_config("x.csv", {"host": "eu", "concurrency": value}, {})


@pytest.mark.parametrize("value", ["abc", "", "1.5"])
def test_max_error_rate_not_a_fraction_is_one_line(value):
    with pytest.raises(ConfigError, match=r"--max-error-rate: .* is not a fraction between 0 and 1"):
        resolve_config("x.csv", {"host": "eu", "max_error_rate": value}, {})


def test_a_bad_file_value_names_the_flag(tmp_path):
    config_file = tmp_path / "c.toml"
    config_file.write_text('host = "eu"\nrow_deadline = "soon"\n')
    with pytest.raises(ConfigError, match=r"^--row-deadline: 'soon' is not a number of seconds$"):
        resolve_config("x.csv", {"config": str(config_file)}, {})
