using System.Runtime.Versioning;

// Network namespaces, veths and bridges: these tests exist only on Linux.
[assembly: SupportedOSPlatform("linux")]
