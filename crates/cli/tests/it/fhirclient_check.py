"""A standard SMART client library, unchanged, against a running Meridian.

Run by access_scenario.rs in a virtual environment with `fhirclient` 4.x installed:
    python fhirclient_check.py BASE CLIENT_ID REDIRECT_URI USERNAME PASSWORD PATIENT_ID OBSERVATION_ID

fhirclient reads the OAuth endpoints from the CapabilityStatement, builds the authorization
request (with PKCE), exchanges the code and reads with its own models. The only thing done by
hand is what a person does in a browser: fill in the login form and approve, here with
`requests`, following the pages' own forms. Prints one JSON line of what it read; any failure
is an exception and a non-zero exit.
"""

import json
import sys
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests
from fhirclient import client
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient


class Forms(HTMLParser):
    """Every form of a page: its action, its hidden fields and the names of its other controls."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "hidden": {}, "controls": set()})
        elif tag in ("input", "button") and self.forms and attrs.get("name"):
            form = self.forms[-1]
            if tag == "input" and attrs.get("type") == "hidden":
                form["hidden"][attrs["name"]] = attrs.get("value", "")
            else:
                form["controls"].add(attrs["name"])


def form_with(page, control):
    parser = Forms()
    parser.feed(page.text)
    for form in parser.forms:
        if control in form["controls"]:
            return urljoin(page.url, form["action"]), dict(form["hidden"])
    raise AssertionError(f"no form with {control} on {page.url}: {page.status_code} {page.text[:500]}")


def main():
    base, client_id, redirect_uri, username, password, patient_id, observation_id = sys.argv[1:]
    smart = client.FHIRClient(
        settings={
            "app_id": client_id,
            "api_base": base,
            "redirect_uri": redirect_uri,
            "scope": "openid fhirUser launch/patient patient/*.rs offline_access",
        }
    )
    authorize_url = smart.authorize_url
    assert authorize_url and "code_challenge=" in authorize_url, authorize_url

    browser = requests.Session()
    browser.headers["Accept-Language"] = "en"
    login = browser.get(authorize_url, allow_redirects=False, timeout=30)
    assert login.status_code == 200, (login.status_code, login.text[:500])
    action, fields = form_with(login, "password")
    fields.update(username=username, password=password)
    approval = browser.post(action, data=fields, allow_redirects=False, timeout=30)
    assert approval.status_code == 200, (approval.status_code, approval.text[:500])
    action, fields = form_with(approval, "decision")
    fields["decision"] = "allow"
    redirect = browser.post(action, data=fields, allow_redirects=False, timeout=30)
    assert redirect.status_code in (302, 303), (redirect.status_code, redirect.text[:500])
    callback = redirect.headers["Location"]
    assert callback.startswith(redirect_uri), callback

    smart.handle_callback(callback)
    assert smart.ready, "no access token"
    assert smart.patient_id == patient_id, (smart.patient_id, patient_id)

    patient = smart.patient
    assert isinstance(patient, Patient), patient
    observation = Observation.read(observation_id, smart.server)
    assert observation.subject.reference == f"Patient/{patient_id}", observation.subject.reference
    found = Observation.where(struct={"patient": patient_id}).perform_resources(smart.server)

    print(
        json.dumps(
            {
                "patient": patient.id,
                "family": patient.name[0].family,
                "birthDate": patient.birthDate.isostring,
                "observation": observation.id,
                "code": observation.code.coding[0].code,
                "value": float(observation.valueQuantity.value),
                "found": sorted(o.id for o in found),
            }
        )
    )


if __name__ == "__main__":
    main()
