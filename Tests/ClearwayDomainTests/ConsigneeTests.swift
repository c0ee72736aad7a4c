import ClearwayDomain
import Testing

struct ConsigneeTests {
    let secret = try! ConsigneeKeySecret(text: "test-secret-0123456789")

    private func consignee(_ name: String, _ line1: String, _ line2: String? = nil, zip: String = "62704")
        -> Consignee
    {
        Consignee(
            name: name, line1: line1, line2: line2, city: "Springfield", region: "IL", postalCode: zip, country: "US")
    }

    @Test func spellingVariantsOfOneAddressAreOnePerson() throws {
        let a = try consignee("Jane Q. Doe", "12 Oak Street Apt 4").keys(secret: secret)
        let b = try consignee("JANE Q DOE", "12 OAK ST #4", zip: "62704-1234").keys(secret: secret)
        let c = try consignee("jane  q doe", "12 Oak St.", "Apartment 4").keys(secret: secret)
        #expect(a == b)
        #expect(a == c)
    }

    @Test func anotherNameAtTheSameAddressSharesOnlyTheAddressKey() throws {
        let jane = try consignee("Jane Doe", "12 Oak Street Apt 4").keys(secret: secret)
        let john = try consignee("John Doe", "12 Oak St # 4").keys(secret: secret)
        #expect(jane.addressKey == john.addressKey)
        #expect(jane.consigneeKey != john.consigneeKey)
    }

    @Test func differentUnitsOrStreetsAreDifferentAddresses() throws {
        let four = try consignee("Jane Doe", "12 Oak Street Apt 4").keys(secret: secret)
        let five = try consignee("Jane Doe", "12 Oak Street Apt 5").keys(secret: secret)
        let front = try consignee("Jane Doe", "12 Front Street").keys(secret: secret)
        let oak = try consignee("Jane Doe", "12 Oak Street").keys(secret: secret)
        #expect(four.addressKey != five.addressKey)
        #expect(front.addressKey != oak.addressKey)
        #expect(four.addressKey != oak.addressKey)
    }

    @Test func keysAreKeyedHashesThatHoldNoName() throws {
        let keys = try consignee("Jane Doe", "12 Oak Street").keys(secret: secret)
        let other = try consignee("Jane Doe", "12 Oak Street").keys(
            secret: ConsigneeKeySecret(text: "another-secret-0123456789"))
        #expect(keys.consigneeKey.count == 32 && keys.consigneeKey.allSatisfy(\.isHexDigit))
        #expect(!keys.consigneeKey.localizedCaseInsensitiveContains("doe"))
        #expect(keys != other)
        #expect(throws: DomainError.self) { try ConsigneeKeySecret(text: "short") }
    }

    @Test func aConsigneeWithoutNameOrStreetIsRefused() {
        #expect(throws: DomainError.self) { try consignee("", "12 Oak Street").keys(secret: secret) }
        #expect(throws: DomainError.self) { try consignee("Jane", "  ").keys(secret: secret) }
    }
}
