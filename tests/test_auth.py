import hashlib

from bulkrevoke.send.auth import basic_authorization

# Capillary's worked example gives this header for user store123. Its MD5 part,
# bdc87b9c894da5168059e00ebffb9077, is md5("password1234"), not md5("Pass123") as the
# example's text says, so the example is checked with the password that matches it.
CAPILLARY_EXAMPLE = "Basic c3RvcmUxMjM6YmRjODdiOWM4OTRkYTUxNjgwNTllMDBlYmZmYjkwNzc="


def test_basic_matches_capillarys_worked_example():
    assert hashlib.md5(b"password1234").hexdigest() == "bdc87b9c894da5168059e00ebffb9077"
    assert basic_authorization("store123", "password1234") == CAPILLARY_EXAMPLE


def test_basic_hashes_the_password_with_md5_before_base64():
    header = basic_authorization("store123", "Pass123")
    assert header == "Basic c3RvcmUxMjM6MmYyM2ZhMzU3OWYzZjc1MTc1NzkzNjQ5MTE1YzFiMjU="
    assert header != CAPILLARY_EXAMPLE
