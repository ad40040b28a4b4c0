//! Storage: PersistentVolumes and PersistentVolumeClaims, StorageClasses,
//! VolumeAttachments, CSINodes and CSIDrivers.

use serde_json::Value;

use super::cells::{age, at, flag, is_set, list, name, quantity, text};
use super::networking::strings;
use super::{col, wide, Column, AGE, NAME};

pub(super) const PV_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Capacity",
        "string",
        "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity",
    ),
    col(
        "Access Modes",
        "string",
        "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes",
    ),
    col(
        "Reclaim Policy",
        "string",
        "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming",
    ),
    col(
        "Status",
        "string",
        "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase",
    ),
    col(
        "Claim",
        "string",
        "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding",
    ),
    col("StorageClass", "string", "StorageClass of the pv"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    col(
        "Reason",
        "string",
        "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.",
    ),
];

/// helper.GetAccessModesAsString.
fn access_modes(modes: &[Value]) -> String {
    let modes = strings(modes);
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.iter().any(|m| m == mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The beta storage-class annotation wins over spec.storageClassName.
fn storage_class(object: &Value) -> String {
    at(
        object,
        &[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-class",
        ],
    )
    .and_then(Value::as_str)
    .map_or_else(
        || text(object, &["spec", "storageClassName"]),
        str::to_string,
    )
}

fn unset_or(object: &Value, path: &[&str]) -> String {
    at(object, path)
        .and_then(Value::as_str)
        .unwrap_or("<unset>")
        .to_string()
}

pub(super) fn pv_cells(object: &Value, now: i64) -> Vec<Value> {
    let claim = match at(object, &["spec", "claimRef"]).filter(|c| c.is_object()) {
        Some(claim) => format!("{}/{}", text(claim, &["namespace"]), text(claim, &["name"])),
        None => String::new(),
    };
    let phase = if is_set(object, &["metadata", "deletionTimestamp"]) {
        "Terminating".to_string()
    } else {
        text(object, &["status", "phase"])
    };
    vec![
        name(object),
        Value::from(quantity(at(object, &["spec", "capacity", "storage"]))),
        Value::from(access_modes(list(object, &["spec", "accessModes"]))),
        Value::from(text(object, &["spec", "persistentVolumeReclaimPolicy"])),
        Value::from(phase),
        Value::from(claim),
        Value::from(storage_class(object)),
        Value::from(unset_or(object, &["spec", "volumeAttributesClassName"])),
        Value::from(text(object, &["status", "reason"])),
        age(object, now),
        Value::from(unset_or(object, &["spec", "volumeMode"])),
    ]
}

pub(super) const PVC_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "phase represents the current phase of PersistentVolumeClaim.",
    ),
    col(
        "Volume",
        "string",
        "volumeName is the binding reference to the PersistentVolume backing this claim.",
    ),
    col(
        "Capacity",
        "string",
        "capacity represents the actual resources of the underlying volume.",
    ),
    col(
        "Access Modes",
        "string",
        "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1",
    ),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.",
    ),
];

pub(super) fn pvc_cells(object: &Value, now: i64) -> Vec<Value> {
    let phase = if is_set(object, &["metadata", "deletionTimestamp"]) {
        "Terminating".to_string()
    } else {
        text(object, &["status", "phase"])
    };
    let volume = text(object, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(at(object, &["status", "capacity", "storage"])),
            access_modes(list(object, &["status", "accessModes"])),
        )
    };
    vec![
        name(object),
        Value::from(phase),
        Value::from(volume),
        Value::from(capacity),
        Value::from(modes),
        Value::from(storage_class(object)),
        Value::from(unset_or(object, &["spec", "volumeAttributesClassName"])),
        age(object, now),
        Value::from(unset_or(object, &["spec", "volumeMode"])),
    ]
}

pub(super) const STORAGE_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Provisioner",
        "string",
        "provisioner indicates the type of the provisioner.",
    ),
    col(
        "ReclaimPolicy",
        "string",
        "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.",
    ),
    col(
        "VolumeBindingMode",
        "string",
        "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.",
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        "allowVolumeExpansion shows whether the storage class allow volume expand.",
    ),
    AGE,
];

pub(super) fn storage_class_cells(object: &Value, now: i64) -> Vec<Value> {
    let annotation = |key: &str| text(object, &["metadata", "annotations", key]) == "true";
    let mut display_name = text(object, &["metadata", "name"]);
    if annotation("storageclass.kubernetes.io/is-default-class")
        || annotation("storageclass.beta.kubernetes.io/is-default-class")
    {
        display_name.push_str(" (default)");
    }
    let or_default = |field: &str, default: &str| {
        at(object, &[field])
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    vec![
        Value::from(display_name),
        Value::from(text(object, &["provisioner"])),
        Value::from(or_default("reclaimPolicy", "Delete")),
        Value::from(or_default("volumeBindingMode", "Immediate")),
        Value::from(flag(object, &["allowVolumeExpansion"]).unwrap_or(false)),
        age(object, now),
    ]
}

pub(super) const VOLUME_ATTACHMENT_COLUMNS: &[Column] = &[
    NAME,
    Column {
        name: "Attacher",
        kind: "string",
        format: "name",
        description: "attacher indicates the name of the volume driver that MUST handle this request. This is the name returned by GetPluginName().",
        priority: 0,
    },
    col(
        "PV",
        "string",
        "persistentVolumeName represents the name of the persistent volume to attach.",
    ),
    col(
        "Node",
        "string",
        "nodeName represents the node that the volume should be attached to.",
    ),
    col(
        "Attached",
        "boolean",
        "attached indicates the volume is successfully attached. This field must only be set by the entity completing the attach operation, i.e. the external-attacher.",
    ),
    AGE,
];

pub(super) fn volume_attachment_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(text(object, &["spec", "attacher"])),
        Value::from(text(object, &["spec", "source", "persistentVolumeName"])),
        Value::from(text(object, &["spec", "nodeName"])),
        Value::from(flag(object, &["status", "attached"]).unwrap_or(false)),
        age(object, now),
    ]
}

pub(super) const CSI_NODE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    ),
    AGE,
];

pub(super) fn csi_node_cells(object: &Value, now: i64) -> Vec<Value> {
    vec![
        name(object),
        Value::from(list(object, &["spec", "drivers"]).len() as i64),
        age(object, now),
    ]
}

pub(super) const CSI_DRIVER_COLUMNS: &[Column] = &[
    NAME,
    col(
        "AttachRequired",
        "boolean",
        "attachRequired indicates this CSI volume driver requires an attach operation (because it implements the CSI ControllerPublishVolume() method), and that the Kubernetes attach detach controller should call the attach volume interface which checks the volumeattachment status and waits until the volume is attached before proceeding to mounting. The CSI external-attacher coordinates with CSI volume driver and updates the volumeattachment status when the attach operation is complete. If the value is specified to false, the attach operation will be skipped. Otherwise the attach operation will be called.\n\nThis field is immutable.",
    ),
    col(
        "PodInfoOnMount",
        "boolean",
        "podInfoOnMount indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations, if set to true. If set to false, pod information will not be passed on mount. Default is false.",
    ),
    col(
        "StorageCapacity",
        "boolean",
        "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report by creating CSIStorageCapacity objects with capacity information, if set to true.",
    ),
    col(
        "TokenRequests",
        "string",
        "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication.",
    ),
    col(
        "RequiresRepublish",
        "boolean",
        "requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume. This field defaults to false.",
    ),
    col(
        "Modes",
        "string",
        "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports. The default if the list is empty is \"Persistent\", which is the usage defined by the CSI specification and implemented in Kubernetes via the usual PV/PVC mechanism.",
    ),
    AGE,
];

pub(super) fn csi_driver_cells(object: &Value, now: i64) -> Vec<Value> {
    let token_requests = match at(object, &["spec", "tokenRequests"]).and_then(Value::as_array) {
        Some(requests) => requests
            .iter()
            .map(|r| text(r, &["audience"]))
            .collect::<Vec<_>>()
            .join(","),
        None => "<unset>".to_string(),
    };
    let modes = strings(list(object, &["spec", "volumeLifecycleModes"])).join(",");
    vec![
        name(object),
        Value::from(flag(object, &["spec", "attachRequired"]).unwrap_or(true)),
        Value::from(flag(object, &["spec", "podInfoOnMount"]).unwrap_or(false)),
        Value::from(flag(object, &["spec", "storageCapacity"]).unwrap_or(false)),
        Value::from(token_requests),
        Value::from(flag(object, &["spec", "requiresRepublish"]).unwrap_or(false)),
        Value::from(if modes.is_empty() {
            "<none>".to_string()
        } else {
            modes
        }),
        age(object, now),
    ]
}
