"""End to end in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``).

Starts the panel as a real server on a free loopback port over a fresh SQLite database, then a
manager logs in, searches, edits a customer, archives and restores it, and moves a deal on the
pipeline. Screenshots at desktop and phone sizes go to ``docs/screenshots/``. The browser
console must show no Content-Security-Policy violation.

Without Chromium the test is skipped on a developer machine and fails when ``CI`` is set.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PASSWORD, make_staff
from sqlalchemy import select

from crm_core import activities
from crm_core import customers as svc
from crm_core.db import Database
from crm_core.models import Customer, Deal

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"
DESKTOP = (1366, 900)
PHONE = (390, 844)


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        message = "Debian's chromium and chromium-driver are needed (make test installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict]:
    db = Database(f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    db.init()
    with db.transaction() as s:
        activities.ensure_pipeline_stages(s)
    staff = make_staff(db)
    with db.transaction() as s:
        wang = svc.create_customer(
            s,
            actor=staff.sales1,
            data={"name": "王伟", "phones": ["138 0013 8000"], "city": "杭州", "tags": ["vip"]},
        )
        for i, name in enumerate(["Alice Smith", "Bob Jones", "李娜", "Acme Trading Ltd"]):
            svc.create_customer(
                s,
                actor=staff.manager,
                data={
                    "name": name,
                    "kind": "company" if "Ltd" in name else "person",
                    "city": ["Shanghai", "Beijing", "深圳", "Hong Kong"][i],
                    "lifecycle_stage": ["customer", "prospect", "vip", "lead"][i],
                    "emails": [f"contact{i}@example.com"],
                },
            )
        activities.log_interaction(
            s, actor=staff.sales1, customer_id=wang.id, kind="call", subject="Intro call"
        )
        deal = activities.create_deal(
            s, actor=staff.sales1, customer_id=wang.id, title="Annual plan", amount="48000"
        )
        ids = {"customer": wang.id, "deal": deal.id}
    db.dispose()
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_"))},
        "CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.sqlite3'}",
        "CRM_STORAGE_SECRET": "e2e-test-secret-" + "x" * 32,
        "CRM_HOST": "127.0.0.1",
        "CRM_PORT": str(port),
        "CRM_DATA_DIR": str(tmp_path),
        "NICEGUI_STORAGE_PATH": str(tmp_path / "nicegui"),
    }
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app" / "main.py")],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a loaded machine starts the server slowly
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/login", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
    else:
        proc.terminate()
        raise AssertionError("the panel did not start:\n" + (tmp_path / "server.log").read_text())
    yield {"base": base, "db_url": env["CRM_DATABASE_URL"], **ids}
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    chromium, driver_path = _browser_paths()
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chrome'}", "--lang=en-US",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_window_size(*DESKTOP)
    yield driver
    driver.quit()


def test_manager_day_in_a_real_browser(server: dict, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    try:
        _manager_day(server, browser)
    except Exception:
        browser.save_screenshot(str(tmp_path / "failure.png"))
        print("screenshot of the failure:", tmp_path / "failure.png")
        raise


def _manager_day(server: dict, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    wait = WebDriverWait(driver, 20)
    base = server["base"]
    SHOTS.mkdir(parents=True, exist_ok=True)

    def field(label: str):  # type: ignore[no-untyped-def]
        return wait.until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, f'input[aria-label="{label}"]'))
        )

    def button(text: str, within: str = ""):  # type: ignore[no-untyped-def]
        xpath = f"{within}//button[.//span[normalize-space(text())='{text}']]"
        found = wait.until(ec.element_to_be_clickable((By.XPATH, xpath)))
        # as a user would: scroll it out from under the fixed header before clicking
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", found)
        return wait.until(ec.element_to_be_clickable((By.XPATH, xpath)))

    def see(text: str) -> None:
        wait.until(ec.presence_of_element_located((By.XPATH, f"//*[contains(text(), '{text}')]")))

    def shot(name: str) -> None:
        time.sleep(0.4)  # let transitions finish so the picture is steady
        driver.save_screenshot(str(SHOTS / f"{name}.png"))

    # log in (the gate sends us to the log-in page first)
    driver.get(f"{base}/customers")
    wait.until(ec.url_contains("/login"))
    shot("desktop-login")
    field("Username").send_keys("manager")
    field("Password").send_keys(PASSWORD, Keys.ENTER)
    wait.until(ec.url_contains("/customers"))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".ag-row")))
    see("Alice Smith")
    shot("desktop-customers")

    # quick search by pinyin
    search = wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, 'input[placeholder^="Search name"]'))
    )
    search.send_keys("wangwei", Keys.ENTER)
    wait.until(
        ec.invisibility_of_element_located(
            (By.XPATH, "//div[@col-id='name' and contains(., 'Alice')]")
        )
    )
    cell = wait.until(
        ec.element_to_be_clickable((By.XPATH, "//div[@col-id='name' and contains(., '王伟')]"))
    )
    cell.click()
    wait.until(ec.url_contains(f"/customers/{server['customer']}"))
    see("Intro call")

    # edit
    city = field("City")
    city.send_keys(Keys.CONTROL, "a")
    city.send_keys("宁波")
    button("Save").click()
    see("Saved.")
    shot("desktop-customer")

    # archive with a reason, then restore
    button("Archive").click()
    reason = wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, '.q-dialog input[aria-label="Reason"]'))
    )
    reason.send_keys("Duplicate of another record")
    button("Archive", within="//div[contains(@class,'q-dialog')]").click()
    see("Reason: Duplicate of another record")
    button("Restore").click()
    wait.until(
        ec.invisibility_of_element_located((By.XPATH, "//*[contains(text(), 'Reason: Duplicate')]"))
    )

    # pipeline: move the deal to Proposal
    driver.get(f"{base}/pipeline")
    see("Annual plan")
    move = wait.until(
        ec.element_to_be_clickable((By.XPATH, "//label[.//div[normalize-space(text())='Move to']]"))
    )
    move.click()
    option = wait.until(
        ec.element_to_be_clickable(
            (
                By.XPATH,
                "//div[contains(@class,'q-menu')]//div[@role='option' and contains(., 'Proposal')]",
            )
        )
    )
    option.click()
    see("Deal moved.")
    shot("desktop-pipeline")

    # phone-sized screens
    driver.set_window_size(*PHONE)
    driver.get(f"{base}/customers")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".ag-row")))
    shot("phone-customers")
    driver.get(f"{base}/customers/{server['customer']}")
    see("Intro call")
    shot("phone-customer")
    driver.get(f"{base}/pipeline")
    see("Annual plan")
    shot("phone-pipeline")

    # the panel works under its Content-Security-Policy
    console = driver.get_log("browser")
    assert not [e for e in console if "Content Security Policy" in e.get("message", "")], console

    db = Database(server["db_url"])
    with db.transaction() as s:
        customer = s.get(Customer, server["customer"])
        assert customer.city == "宁波" and customer.archived_at is None
        assert s.scalar(select(Deal.stage).where(Deal.id == server["deal"])) == "proposal"
    db.dispose()
    for name in ("desktop-customers", "desktop-customer", "phone-customers", "phone-customer"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
