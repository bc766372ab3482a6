"""The playground in a real browser: headless Chromium, driven by selenium.

    python .ci/playground_browser.py --url http://127.0.0.1:PORT/ --screenshot docs/images/playground.png

Opens the page, loads a test digit, draws a "1" (one vertical stroke, with the mouse and
then by touch) and a "0" (a loop, with the mouse) and checks the label the page shows for each, presses shift buttons and
checks that the page shows the moved input and the change it measured, checks the browser
logged no errors, and saves a screenshot. Uses Debian's chromium and chromium-driver
(nothing downloaded: selenium is told where both are).
"""

import argparse
import math
import os
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# Selenium Manager must not try to fetch a browser or a driver.
os.environ.setdefault("SE_OFFLINE", "true")


def browser(user_data_dir):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1200,1000",
        f"--user-data-dir={user_data_dir}",
    ]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def wait_for(driver, what, condition, timeout=20):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))
    except Exception:
        shown = driver.find_element(By.ID, "prediction").text
        status = driver.find_element(By.ID, "status").text
        raise AssertionError(f"timed out waiting for {what} (prediction shown: {shown!r}, status: {status!r})")


def shown_label(driver):
    return driver.find_element(By.ID, "prediction").get_attribute("data-label")


def stroke(driver, canvas, points, touch=False):
    """Puts the mouse button (or a finger) down at the first point (offsets from the canvas
    centre, in CSS pixels), moves through the others and lifts it."""
    kind = interaction.POINTER_TOUCH if touch else interaction.POINTER_MOUSE
    actions = ActionBuilder(driver, mouse=PointerInput(kind, "finger" if touch else "mouse"), duration=10)
    x, y = points[0]
    actions.pointer_action.move_to(canvas, round(x), round(y)).pointer_down()
    for x, y in points[1:]:
        actions.pointer_action.move_to(canvas, round(x), round(y))
    actions.pointer_action.pointer_up()
    actions.perform()


def draw_and_check(driver, canvas, name, points, want, touch=False):
    driver.find_element(By.ID, "clear").click()
    wait_for(driver, "the cleared page", lambda d: shown_label(d) is None)
    stroke(driver, canvas, points, touch)
    # The page predicts while the stroke is drawn; wait for the answer to the finished one.
    label = wait_for(driver, f"a prediction for the {name}", lambda d: shown_label(d) == want and want)
    print(f"drew {name}: the page shows {label} ({driver.find_element(By.ID, 'prediction').text})")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--screenshot", required=True)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="playground-chromium-") as profile:
        driver = browser(profile)
        try:
            driver.get(args.url)
            wait_for(driver, "the page to load", lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "yes")
            filters = driver.find_elements(By.CSS_SELECTOR, "#filters .cell")
            assert len(filters) == 30, f"{len(filters)} filters shown"
            about = driver.find_element(By.ID, "about").text
            print("page:", about)

            # A test digit: the page shows it with its label, and a prediction.
            driver.find_element(By.ID, "test-digit").click()
            wait_for(driver, "a test digit", lambda d: d.find_element(By.ID, "digit-caption").text.startswith("test digit"))
            wait_for(driver, "its prediction", lambda d: shown_label(d) is not None)
            print(f"{driver.find_element(By.ID, 'digit-caption').text}: the page predicts {shown_label(driver)}")

            canvas = driver.find_element(By.ID, "draw")
            # A "1": one vertical stroke down the middle.
            one = [(0, -95 + 10 * i) for i in range(20)]
            draw_and_check(driver, canvas, '"1" (a vertical stroke)', one, "1")
            # The same with a finger: touch events draw too.
            draw_and_check(driver, canvas, '"1" by touch', one, "1", touch=True)
            # A "0": an upright oval, drawn from the top all the way round.
            zero = [(60 * math.sin(2 * math.pi * i / 40), -85 * math.cos(2 * math.pi * i / 40)) for i in range(42)]
            draw_and_check(driver, canvas, '"0" (a loop)', zero, "0")
            conv_maps = driver.find_elements(By.CSS_SELECTOR, "#conv .cell")
            marked = driver.find_elements(By.CSS_SELECTOR, "#conv .cell.strong")
            assert len(conv_maps) == 30 and len(marked) == 5, (len(conv_maps), len(marked))

            # Shifts: the page shows the moved input and how much everything changed.
            caption_before = driver.find_element(By.ID, "input-caption").text
            for button, shift in [("shift-down-2", "0,2"), ("shift-right-1", "1,0")]:
                driver.find_element(By.ID, button).click()
                wait_for(driver, f"the result of {button}", lambda d: d.find_element(By.ID, "shift-result").get_attribute("data-shift") == shift)
                conv = driver.find_element(By.ID, "conv-change").text
                pooled = driver.find_element(By.ID, "pooled-change").text
                print(f"{button}: feature maps changed {conv}, pooled maps {pooled}")
                assert conv.endswith("%") and pooled.endswith("%"), (conv, pooled)
                caption = driver.find_element(By.ID, "input-caption").text
                assert caption != caption_before and "moved" in caption, caption
                assert "on" in driver.find_element(By.ID, button).get_attribute("class")

            # The fully connected net of §1: it reads the digit too, but has no feature maps.
            from selenium.webdriver.support.ui import Select
            choice = Select(driver.find_element(By.ID, "network"))
            options = [o.get_attribute("value") for o in choice.options]
            assert options == ["simple_conv_net", "mlp"], options
            choice.select_by_value("mlp")
            draw_and_check(driver, canvas, '"1" for the fully connected net', one, "1")
            wait_for(driver, "the no-maps note", lambda d: d.find_element(By.ID, "no-maps").is_displayed())
            assert not driver.find_element(By.ID, "layers").is_displayed()
            choice.select_by_value("simple_conv_net")
            draw_and_check(driver, canvas, '"0" back on SimpleConvNet', zero, "0")

            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert not errors, f"the browser logged errors: {errors}"

            # The whole page in one picture: a viewport as tall as the page.
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1200, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            time.sleep(0.3)  # let the page lay itself out at the new size
            driver.save_screenshot(args.screenshot)
            print(f"screenshot: {args.screenshot} (1200 x {height})")
        finally:
            driver.quit()
    print("browser test passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"browser test FAILED: {e}", file=sys.stderr)
        sys.exit(1)
