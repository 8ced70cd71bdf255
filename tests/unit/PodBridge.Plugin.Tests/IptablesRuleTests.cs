using PodBridge.Plugin;
using Xunit;

namespace PodBridge.Plugin.Tests;

public class IptablesRuleTests
{
    private const string Chain = "PB-0123456789abcdef01234567";

    [Theory]
    [InlineData($"-A {Chain} -d 10.1.0.0/24 -m comment --comment \"podbridge name: \\\"net1\\\" id: \\\"abc/eth0\\\"\" -j ACCEPT", "abc/eth0")]
    [InlineData($"-A {Chain} ! -d 224.0.0.0/4 -m comment --comment \"podbridge name: \\\"net1\\\" id: \\\"attachment-00ff\\\"\" -j MASQUERADE", "attachment-00ff")]
    public void A_rule_of_this_networks_chain_gives_its_chain_and_tag(string line, string tag) =>
        Assert.Equal((Chain, tag), MasqueradeIptables.OwnRule(line, "net1"));

    [Theory]
    [InlineData($"-A {Chain} -d 10.1.0.0/24 -m comment --comment \"podbridge name: \\\"net2\\\" id: \\\"abc/eth0\\\"\" -j ACCEPT")] // another network
    [InlineData("-A CNI-0123456789abcdef01234567 -m comment --comment \"podbridge name: \\\"net1\\\" id: \\\"abc/eth0\\\"\" -j ACCEPT")] // not ours
    [InlineData("-A PB-0123456789ABCDEF01234567 -m comment --comment \"podbridge name: \\\"net1\\\" id: \\\"abc/eth0\\\"\" -j ACCEPT")] // not our hash
    [InlineData("-A POSTROUTING -s 10.1.0.5/32 -m comment --comment \"podbridge name: \\\"net1\\\" id: \\\"abc/eth0\\\"\" -j PB-0123456789abcdef01234567")]
    [InlineData($"-A {Chain} -m comment --comment \"podbridge name: \\\"net1\\\" id: \\\"\\\"\" -j ACCEPT")] // empty tag
    [InlineData($"-N {Chain}")]
    [InlineData("")]
    public void Any_other_line_is_not_one(string line) => Assert.Null(MasqueradeIptables.OwnRule(line, "net1"));
}
