namespace PodBridge.Cni;

/// <summary>CNI error codes (SPEC.md "Error" section) plus podbridge's own codes (100+), documented in the README.</summary>
public enum CniErrorCode
{
    IncompatibleVersion = 1,
    UnsupportedField = 2,
    UnknownContainer = 3,
    InvalidEnvironmentVariables = 4,
    IoFailure = 5,
    DecodingFailure = 6,
    InvalidNetworkConfig = 7,
    /// <summary>CNI_NETNS is unusable, e.g. it is the plugin's own namespace (libcni types.ErrInvalidNetNS; not in SPEC.md's table).</summary>
    InvalidNetNs = 8,
    TryAgainLater = 11,
    PluginNotAvailable = 50,
    PluginNotAvailableLimitedConnectivity = 51,

    // podbridge-specific (100+)
    /// <summary>The kernel refused a netlink request (message carries errno and the kernel's extended ack).</summary>
    NetlinkFailure = 100,
    /// <summary>CNI_IFNAME (or the host veth) already exists.</summary>
    InterfaceExists = 101,
    /// <summary>No free address in a range set.</summary>
    RangeExhausted = 102,
    /// <summary>A requested static address is taken, is the gateway or is outside every range.</summary>
    AddressUnavailable = 103,
    /// <summary>ADD for a (containerID, ifname) that already holds a live lease.</summary>
    DuplicateAllocation = 104,
    /// <summary>The IPAM database cannot be read; the message names the file and the recovery command.</summary>
    StoreCorrupt = 105,
    /// <summary>CHECK found the kernel or the IPAM disagreeing with prevResult.</summary>
    CheckFailed = 106,
    /// <summary>A delegated plugin (ipam.type other than podbridge-ipam) failed or could not be executed.</summary>
    DelegateFailed = 107,
    /// <summary>The config needs a kernel feature this node lacks (e.g. bridge VLAN filtering); the message names it.</summary>
    KernelFeatureMissing = 108,

    Internal = 999,
}

/// <summary>The one exception type that carries a CNI error code; the host turns it into the error JSON.</summary>
public sealed class CniException : Exception
{
    public CniException(CniErrorCode code, string message, string? details = null, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        Details = details;
    }

    public CniErrorCode Code { get; }
    public string? Details { get; }
}
