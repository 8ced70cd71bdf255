using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests;

/// <summary>
/// The shared scenarios on containernetworking/plugins' bridge + host-local from /usr/lib/cni: the known-good
/// implementation that shows the harness and its assertions are right before they judge podbridge.
/// </summary>
public sealed class ReferencePluginTests : BridgeScenarios
{
    protected override PluginFlavor Flavor => PluginFlavor.Reference;
}
