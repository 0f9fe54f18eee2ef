"""N new residents with 9 visits each (N * 10 resources) at existing institutions of the
generated region, as NDJSON on standard output: the change a refresh must take in."""
import json
import sys

n = int(sys.argv[1])
for i in range(n):
    patient = f"bench-new-{i}"
    print(json.dumps({"resourceType": "Patient", "id": patient, "gender": "female" if i % 2 else "male",
                      "birthDate": f"19{50 + i % 50:02d}-03-0{1 + i % 9}",
                      "address": [{"use": "home", "district": "碧江区"}]}))
    for v in range(9):
        print(json.dumps({"resourceType": "Encounter", "id": f"{patient}-v{v}", "status": "finished",
                          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                          "subject": {"reference": f"Patient/{patient}"},
                          "serviceProvider": {"reference": "Organization/thc-520602-1"},
                          "period": {"start": f"2026-0{1 + v % 6}-1{v}T09:00:00+08:00"}}))
