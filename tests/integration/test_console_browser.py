"""The web console in a real headless Chromium, against a real agent and fake-aws during an apply.

One flow, so the browser and the agent start once: log in through the form; follow a running
apply on its command page until Success without a reload, its graph showing every resource; see
drift on the stack page after an out-of-band change and a sync; the plugins page and the
overview; keyboard order and landmarks. A second test opens a command still queued behind another:
its page gets its graph and updates in place once the command is planned. Each page's screenshot
goes to the test's directory, or to ``FORMAE_CONSOLE_SCREENSHOTS`` (how ``docs/console/*.png`` are
made).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.integration.browser import browser_paths, chromium
from tests.integration.harness import AgentUnderTest, network_forma
from tests.integration.sync_helpers import console, sync

pytestmark = pytest.mark.timeout(120)

RESOURCES = {"net/FakeAWS::EC2::VPC/vpc", "net/FakeAWS::EC2::Subnet/subnet", "net/FakeAWS::S3::Bucket/bucket"}
SLOW = {"FakeDelayMs": 2000}


def _slow_forma() -> dict[str, Any]:
    """The network forma, each operation taking ~2 s: the apply runs while the page is open."""
    forma = network_forma(vpc=SLOW, subnet=SLOW, bucket=SLOW)
    extra = [
        {
            "label": f"logs-{i}",
            "type": "FakeAWS::S3::Bucket",
            "stack": "net",
            "target": "local",
            "properties": {"BucketName": f"net-logs-{i}", **SLOW},
        }
        for i in range(2)
    ]
    forma["resources"] += extra
    return forma


def _wait(driver: Any, condition: Any, timeout: float = 30.0) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # a queued command's page replaces its content once planned: an element found just before is stale
    ignored = (StaleElementReferenceException,)
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=ignored).until(condition)


def _shoot(driver: Any, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(folder / f"{name}.png"))


def _boxes(driver: Any) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, "svg.graph g.box")
    return {b.get_attribute("data-key"): b.get_attribute("class") for b in found}


def test_the_console_follows_an_apply_live_shows_the_graph_and_drift(
    agent: AgentUnderTest, tmp_path: Path
) -> None:
    browser_paths()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    shots = Path(os.environ.get("FORMAE_CONSOLE_SCREENSHOTS") or tmp_path / "shots")
    base = agent.runtime["api_url"] + "/ui"
    with chromium(tmp_path / "profile") as driver:
        driver.get(base + "/commands")  # not logged in: the login page, then back here
        _wait(driver, lambda d: "/ui/login" in d.current_url)
        _shoot(driver, shots, "login")
        driver.find_element(By.ID, "token").send_keys(agent.api_token, Keys.ENTER)
        _wait(driver, lambda d: d.current_url.endswith("/ui/commands"))
        cookie = driver.get_cookie("formae_console")
        assert cookie is not None
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/ui"

        command_id = agent.apply(_slow_forma())["command_id"]
        driver.get(f"{base}/commands/{command_id}")
        assert driver.find_element(By.ID, "state").text in ("Pending", "InProgress")
        driver.execute_script("window.__notReloaded = true")
        assert set(_boxes(driver)) == RESOURCES | {
            "net/FakeAWS::S3::Bucket/logs-0",
            "net/FakeAWS::S3::Bucket/logs-1",
        }

        _wait(driver, lambda d: "m-success" in " ".join(_boxes(d).values()))  # some done, not all
        _shoot(driver, shots, "command-running")
        _wait(driver, lambda d: d.find_element(By.ID, "state").text == "Success")

        assert driver.execute_script("return window.__notReloaded") is True
        assert set(_boxes(driver).values()) == {"box m-success"}
        states = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#updates .u-state")]
        assert states == ["Success"] * 5
        assert driver.find_element(By.ID, "live").text == "This command has ended."
        _shoot(driver, shots, "command")

        console(agent, "update", "net-bucket", '{"Tags": {"by": "hand"}}')
        assert sync(agent)["counts"]["changed"] == 1
        driver.get(f"{base}/stacks/net")
        boxes = _boxes(driver)
        assert boxes["net/FakeAWS::S3::Bucket/bucket"] == "box m-drifted"
        assert boxes["net/FakeAWS::EC2::VPC/vpc"] == "box m-in_sync"
        row = driver.find_element(
            By.CSS_SELECTOR, 'tr[data-key="net/FakeAWS::S3::Bucket/bucket"] .drift-cell'
        )
        assert "changed in the cloud" in row.text
        assert "/Tags" in row.text
        assert driver.find_element(By.ID, "drift-count").text == "1 drifted"
        _shoot(driver, shots, "stack")

        driver.get(f"{base}/plugins")
        table = driver.find_element(By.TAG_NAME, "table").text
        assert "FakeAWS" in driver.find_element(By.TAG_NAME, "h2").text
        assert "local" in table
        assert "healthy" in table
        _shoot(driver, shots, "plugins")

        driver.get(f"{base}/stacks")
        _shoot(driver, shots, "stacks")
        driver.get(f"{base}/commands")
        _shoot(driver, shots, "commands")
        driver.get(f"{base}/")
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg.spark")) == 6 + 4  # live figures, stored trends
        since_start = driver.find_element(By.CSS_SELECTOR, '[aria-labelledby="stats-h"]').text
        assert "FakeAWS" in since_start  # the agent's metrics: plugin calls by namespace and operation
        _shoot(driver, shots, "overview")
        _keyboard_and_landmarks(driver)


def _keyboard_and_landmarks(driver: Any) -> None:
    """Tab reaches the skip link first, then the navigation; landmarks and labels are there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert driver.switch_to.active_element.text == "Skip to content"
    driver.switch_to.active_element.send_keys(Keys.TAB)
    assert driver.switch_to.active_element.text == "Overview"
    assert driver.switch_to.active_element.get_attribute("aria-current") == "page"
    for landmark in ("header", "nav", "main", "footer"):
        assert driver.find_elements(By.TAG_NAME, landmark), landmark
    for chart in driver.find_elements(By.CSS_SELECTOR, "svg.spark"):
        assert chart.get_attribute("aria-label")


def test_a_queued_commands_page_fills_in_its_graph_when_it_is_planned(
    agent: AgentUnderTest, tmp_path: Path
) -> None:
    browser_paths()
    from selenium.webdriver.common.by import By

    with chromium(tmp_path / "profile") as driver:
        driver.get(f"{agent.runtime['api_url']}/ui/")
        _log_in(driver, agent)
        first = agent.apply(network_forma(vpc=SLOW, subnet=SLOW, bucket=SLOW))["command_id"]
        with agent.client() as client:
            queued = client.apply(_slow_forma(), "reconcile", False, False, "queued", queue=True)
        assert queued["queued_behind"] == [first]
        driver.get(f"{agent.runtime['api_url']}/ui/commands/{queued['command_id']}")
        assert driver.find_element(By.ID, "state").text == "Queued"
        assert _boxes(driver) == {}
        driver.execute_script("window.__notReloaded = true")

        _wait(driver, lambda d: d.find_element(By.ID, "state").text == "Success", timeout=60)

        assert driver.execute_script("return window.__notReloaded") is True
        # the first command made the network; planned after it, this one only adds the two buckets
        assert set(_boxes(driver)) == {"net/FakeAWS::S3::Bucket/logs-0", "net/FakeAWS::S3::Bucket/logs-1"}
        _wait(driver, lambda d: set(_boxes(d).values()) == {"box m-success"}, timeout=10)


def _log_in(driver: Any, agent: AgentUnderTest) -> None:
    """Log in through the form, as a person does (the login page is where the redirect left us)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _wait(driver, lambda d: "/ui/login" in d.current_url)
    driver.find_element(By.ID, "token").send_keys(agent.api_token, Keys.ENTER)
    _wait(driver, lambda d: "/ui/login" not in d.current_url)
