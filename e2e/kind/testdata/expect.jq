# What cluster-group.jq must make of testdata/example.json (jq -e: true or fail).
(.items | length) == 2
and (.items | all(.metadata.namespace == "rdg-system"))
and (.items[1].spec | (
  .members == [
    {"name": "ics-a", "priority": 100, "nodeName": "rdg-e2e-worker", "addresses": {"primary": "172.18.0.3", "secondary": "172.31.250.3"}},
    {"name": "ics-b", "priority": 50, "nodeName": "rdg-e2e-worker2", "addresses": {"primary": "172.18.0.4", "secondary": "172.31.250.4"}}
  ]
  and .vips == [{"address": "172.18.255.200/16", "network": "primary"}]
  and .netCheck == {"targets": ["172.18.0.1"], "timeout": "200ms"}
  and .image == "rdg:e2e" and .imagePullPolicy == "Never"
  and .transmitter.channels == [{"address": "224.2.2.2", "port": 22222}]))
