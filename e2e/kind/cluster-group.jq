# Rewrites an example (a List, or one object, as `kubectl create --dry-run=client -o json`
# prints it) for the kind cluster: every object into namespace $ns; in each RedundantGroup the
# members go to $nodes in order (workers first, then the control-plane, tolerated), each
# member's addresses become its node's ($nodes[i].ip1 on the first network, .ip2 on the
# second), the first VIP becomes $vip on the first network, the net-check target the kind
# network's $gateway, and member pods use the loaded $image.
# Used by run.sh; checked against testdata/ by .ci/kubernetes-checks.
def cluster_group:
  [.spec.networks[].name] as $nets
  | .metadata.namespace = $ns
  | .spec.image = $image
  | .spec.imagePullPolicy = "Never"
  | .spec.tolerations = ((.spec.tolerations // []) + [{key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule"}])
  | if (.spec.members | length) > ($nodes | length) then error("more members than nodes") else . end
  | .spec.members |= [to_entries[] | .key as $i | .value
      | del(.nodeSelector)
      | .nodeName = $nodes[$i].name
      | .addresses = ({($nets[0]): $nodes[$i].ip1}
          + (if ($nets | length) > 1 then {($nets[1]): $nodes[$i].ip2} else {} end))]
  | if (.spec.vips // [] | length) > 0 then .spec.vips[0] += {address: $vip, network: $nets[0]} else . end
  | if .spec.netCheck.targets then .spec.netCheck.targets = [$gateway] else . end;

(if .kind == "List" then .items else [.] end)
| {apiVersion: "v1", kind: "List",
   items: map(if .kind == "RedundantGroup" then cluster_group else .metadata.namespace = $ns end)}
