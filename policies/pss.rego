# Pod security: the Kubernetes Pod Security Standards "restricted" profile, checked on
# every pod spec (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob),
# plus a read-only root filesystem, which the platform requires on top of the profile.
# Every rule here is an error: the standard templates always satisfy them, so a finding
# means a manifest from elsewhere, or a platform template, broke the guarantee.
#
# Each finding carries the path of the offending field (lib.finding_at), so `validate`
# points at the line of `privileged: true`, not at the object's name.
package gitops.pss

import data.gitops.lib
import data.gitops.lib.all_containers
import data.gitops.lib.pods

# pss-run-as-non-root: every container must be kept from running as root.
deny contains f if {
	some e in all_containers
	i := e.i
	obj := e.obj
	spec := e.spec
	not e.security.runAsNonRoot == true
	f := lib.finding_at(
		"pss-run-as-non-root",
		sprintf("%s may run as root (runAsNonRoot is %v): set securityContext.runAsNonRoot: true on the pod or the container", [lib.container_subject(obj, e.container), object.get(e.security, "runAsNonRoot", "unset")]),
		i, lib.effective_path(spec, e, "runAsNonRoot"), null,
	)
}

# pss-run-as-user-root: no container may ask for UID 0.
deny contains f if {
	some e in all_containers
	i := e.i
	obj := e.obj
	spec := e.spec
	e.security.runAsUser == 0
	f := lib.finding_at(
		"pss-run-as-user-root",
		sprintf("%s sets runAsUser: 0 (root): use a non-zero UID, above 10000 so it never matches a user on the node", [lib.container_subject(obj, e.container)]),
		i, lib.effective_path(spec, e, "runAsUser"), null,
	)
}

# pss-privileged: no privileged containers.
deny contains f if {
	some e in all_containers
	i := e.i
	obj := e.obj
	e.container.securityContext.privileged == true
	f := lib.finding_at(
		"pss-privileged",
		sprintf("%s is privileged, which gives it every device and capability of the node: remove securityContext.privileged or set it to false", [lib.container_subject(obj, e.container)]),
		i, array.concat(e.path, ["securityContext", "privileged"]), null,
	)
}

# pss-privilege-escalation: allowPrivilegeEscalation must be set, and to false.
deny contains f if {
	some e in all_containers
	i := e.i
	obj := e.obj
	not e.container.securityContext.allowPrivilegeEscalation == false
	f := lib.finding_at(
		"pss-privilege-escalation",
		sprintf("%s does not set securityContext.allowPrivilegeEscalation: false, so setuid binaries can gain privileges: set it to false", [lib.container_subject(obj, e.container)]),
		i, array.concat(e.path, ["securityContext", "allowPrivilegeEscalation"]), null,
	)
}

# pss-capabilities-drop-all: every container drops ALL capabilities.
deny contains f if {
	some e in all_containers
	i := e.i
	obj := e.obj
	not drops_all(e.container)
	f := lib.finding_at(
		"pss-capabilities-drop-all",
		sprintf("%s does not drop all Linux capabilities: set securityContext.capabilities.drop: [ALL]", [lib.container_subject(obj, e.container)]),
		i, array.concat(e.path, ["securityContext", "capabilities", "drop"]), null,
	)
}

drops_all(c) if {
	some cap in lib.array_at(c, ["securityContext", "capabilities", "drop"])
	cap == "ALL"
}

# pss-capabilities-add: the only capability a container may add back is NET_BIND_SERVICE.
deny contains f if {
	some e in all_containers
	i := e.i
	obj := e.obj
	some j, cap in lib.array_at(e.container, ["securityContext", "capabilities", "add"])
	cap != "NET_BIND_SERVICE"
	f := lib.finding_at(
		"pss-capabilities-add",
		sprintf("%s adds the capability %v: remove it from securityContext.capabilities.add (only NET_BIND_SERVICE is allowed)", [lib.container_subject(obj, e.container), cap]),
		i, array.concat(e.path, ["securityContext", "capabilities", "add", j]), null,
	)
}

# pss-seccomp: every container runs under the RuntimeDefault or a Localhost profile.
deny contains f if {
	some e in all_containers
	i := e.i
	obj := e.obj
	spec := e.spec
	not seccomp_profile(e.security) in {"RuntimeDefault", "Localhost"}
	f := lib.finding_at(
		"pss-seccomp",
		sprintf("%s runs with seccomp profile %v: set securityContext.seccompProfile.type: RuntimeDefault on the pod (or Localhost with a profile)", [lib.container_subject(obj, e.container), seccomp_profile(e.security)]),
		i, array.concat(lib.effective_path(spec, e, "seccompProfile"), ["type"]), null,
	)
}

seccomp_profile(security) := t if {
	t := security.seccompProfile.type
} else := "unset"

# pss-host-namespaces: no sharing of the node's network, PID or IPC namespace.
deny contains f if {
	some p in pods
	i := p.i
	obj := p.obj
	spec := p.spec
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	spec[field] == true
	f := lib.finding_at(
		"pss-host-namespaces",
		sprintf("%s sets %s: true, sharing the node's namespace with the pod: remove it", [lib.resource(obj), field]),
		i, array.concat(p.path, [field]), null,
	)
}

# pss-host-path: no hostPath volumes.
deny contains f if {
	some p in pods
	i := p.i
	obj := p.obj
	spec := p.spec
	some j, v in lib.array_at(spec, ["volumes"])
	lib.get(v, ["hostPath"], null) != null
	f := lib.finding_at(
		"pss-host-path",
		sprintf("%s mounts the node's path %v through the hostPath volume %v: use an emptyDir, a ConfigMap, a Secret or a PersistentVolumeClaim instead", [lib.resource(obj), lib.get(v, ["hostPath", "path"], "?"), lib.get(v, ["name"], "?")]),
		i, array.concat(p.path, ["volumes", j, "hostPath"]), null,
	)
}

# pss-volume-types: only the volume types the restricted profile allows (hostPath has
# its own rule above).
allowed_volume_types := {
	"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
	"persistentVolumeClaim", "projected", "secret",
}

deny contains f if {
	some p in pods
	i := p.i
	obj := p.obj
	spec := p.spec
	some j, v in lib.array_at(spec, ["volumes"])
	is_object(v)
	some t, _ in v
	not t in {"name", "hostPath"}
	not allowed_volume_types[t]
	f := lib.finding_at(
		"pss-volume-types",
		sprintf("%s uses a %v volume (%v), which the restricted profile forbids: use one of %v", [lib.resource(obj), t, lib.get(v, ["name"], "?"), sort(allowed_volume_types)]),
		i, array.concat(p.path, ["volumes", j, t]), null,
	)
}

# pss-host-ports: no container binds a port on the node.
deny contains f if {
	some e in all_containers
	i := e.i
	obj := e.obj
	some j, p in lib.array_at(e.container, ["ports"])
	lib.get(p, ["hostPort"], 0) != 0
	f := lib.finding_at(
		"pss-host-ports",
		sprintf("%s binds hostPort %v on the node: remove hostPort and reach the pod through a Service", [lib.container_subject(obj, e.container), p.hostPort]),
		i, array.concat(e.path, ["ports", j, "hostPort"]), null,
	)
}

# pss-read-only-root-filesystem: the image's filesystem cannot be written to; writable
# paths are explicit volumes (the standard templates mount /tmp as an emptyDir).
deny contains f if {
	some e in all_containers
	i := e.i
	obj := e.obj
	not e.container.securityContext.readOnlyRootFilesystem == true
	f := lib.finding_at(
		"pss-read-only-root-filesystem",
		sprintf("%s has a writable root filesystem: set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where the app must write", [lib.container_subject(obj, e.container)]),
		i, array.concat(e.path, ["securityContext", "readOnlyRootFilesystem"]), null,
	)
}
