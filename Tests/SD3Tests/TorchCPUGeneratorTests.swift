import Foundation
import SafeTensors
import Testing
@testable import SD3

/// torch.randn on a seeded CPU generator, bit for bit (scripts/fixtures/noise.py, torch 2.15 on x86-64).
@Suite struct TorchCPUGeneratorTests {
    static let reference = try! SafeTensorsFile(path: Bundle.module.url(forResource: "Fixtures/noise", withExtension: "safetensors")!.path)

    @Test func randnIsBitExact() throws {
        let cases = try JSONSerialization.jsonObject(with: Data(Self.reference.metadata["cases"]!.utf8)) as! [[String: Any]]
        for (index, c) in cases.enumerated() {
            let seed = UInt64(c["seed"] as! String)!, shape = c["shape"] as! [Int]
            var generator = TorchCPUGenerator(seed: seed)
            for (name, values) in [("case\(index)", generator.randn(shape)), ("case\(index).next", generator.randn([20]))] {
                let expected = try Self.reference.tensor(name).data
                let mismatches = zip(values, expected).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
                #expect(values.count == expected.count && mismatches.isEmpty,
                        "seed \(seed) shape \(shape) \(name): \(mismatches.count) of \(expected.count) differ; first at \(mismatches.first.map { "\($0.offset): \($0.element.0) vs \($0.element.1)" } ?? "-")")
            }
        }
    }

    /// Test vectors printed by torch 2.11 (`torch.manual_seed(0)`, then `torch.randn` of these shapes), independent of the fixture.
    @Test func specTestVectors() {
        var generator = TorchCPUGenerator(seed: 0)
        let noise = generator.randn([1, 16, 128, 128])
        #expect(Array(noise.prefix(8)) == [-1.1258398294448853, -1.152360200881958, -0.2505785822868347, -0.4338788092136383,
                                          0.8487103581428528, 0.6920091509819031, -0.31601276993751526, -2.1152193546295166])
        #expect(Array(noise.suffix(4)) == [-0.6056633591651917, -0.17997485399246216, -1.2138676643371582, 0.07685992121696472])
        var small = TorchCPUGenerator(seed: 0)
        let six = small.randn([2, 3])
        let expected: [Float] = [1.5409961, -0.2934289, -2.1787894, 0.5684313, -1.0845224, -1.3985955]
        #expect(zip(six, expected).allSatisfy { abs($0 - $1) < 1e-6 }, "\(six)")
    }
}
