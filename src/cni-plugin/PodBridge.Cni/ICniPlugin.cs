namespace PodBridge.Cni;

/// <summary>
/// What a CNI plugin does per verb. Implemented by the bridge plugin, by the IPAM (in-process or as the
/// podbridge-ipam executable) and by <see cref="DelegatedPlugin"/> (any other IPAM binary from CNI_PATH).
/// Failures are thrown as <see cref="CniException"/>.
/// </summary>
public interface ICniPlugin
{
    CniResult Add(CniRequest request, NetConf config);
    void Del(CniRequest request, NetConf config);
    void Check(CniRequest request, NetConf config);
    void Gc(CniRequest request, NetConf config);
    void Status(CniRequest request, NetConf config);
}
