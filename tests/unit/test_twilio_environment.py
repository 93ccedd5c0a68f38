"""The Twilio client reads the proxy and CA settings of the environment once, not per request."""

from __future__ import annotations

import requests

from crm.messaging.twilio_backend import API_URL, read_environment_once


def test_proxies_and_bundle_are_read_once(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")
    session = requests.Session()
    read_environment_once(session, API_URL)
    assert session.trust_env is False
    assert session.proxies["https"] == "http://proxy.example:3128"
    assert session.verify == "/etc/ssl/bundle.pem"
    settings = session.merge_environment_settings(API_URL + "/x", {}, None, None, None)
    assert settings["proxies"]["https"] == "http://proxy.example:3128"


def test_a_host_excluded_by_no_proxy_gets_no_proxy(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    session = requests.Session()
    read_environment_once(session, "http://127.0.0.1:8080")
    assert session.proxies == {}
    assert session.verify is True
