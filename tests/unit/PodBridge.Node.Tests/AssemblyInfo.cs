// The agent is Linux-only (files modes, netlink, glibc): so are its tests.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
