using PodBridge.Cni;
using PodBridge.Plugin;

// The whole entry point: the protocol host parses the invocation and dispatches to the plugin's verbs.
return CniHost.Run("podbridge", new BridgePlugin(), CniHost.ProcessIo());
