import ClearwayDomain
import Testing

struct MIDTests {
    private func mid(
        _ name: String, _ street: String, _ city: String, _ country: String, province: String? = nil
    ) throws -> String {
        try MID(manufacturer: .init(name: name, street: street, city: city, country: country, province: province))
            .rawValue
    }

    /// The Appendix's own example, with DOMAIN.md's street line.
    @Test func amalgamatedPlastics() throws {
        #expect(
            try mid("Amalgamated Plastics Corp.", "11455 Main Street Suite 9999", "Hong Kong", "HK")
                == "HKAMAPLA1145HON")
    }

    @Test func aOneWordNameGivesThreeLetters() throws {
        #expect(try mid("Bergstrom", "22 Storgatan", "Stockholm", "SE") == "SEBER22STO")
    }

    @Test func initialsTogetherAreOneWord() throws {
        #expect(try mid("A.B.C. Company", "5 Rue Haute", "Lyon", "FR") == "FRABCCOM5LYO")
        #expect(try mid("A B C Company", "5 Rue Haute", "Lyon", "FR") == "FRABCCOM5LYO")
        #expect(try mid("O.A.S.I.S. Corp.", "88 Jalan Besar", "Kuala Lumpur", "MY") == "MYOASCOR88KUA")
    }

    @Test func ignoredWordsAreSkipped() throws {
        #expect(try mid("The Garment and Textiles Company Co. Ltd", "1 Calle Uno", "Tijuana", "MX") == "MXGARTEX1TIJ")
        #expect(try mid("House of Linen", "1 Calle Uno", "Tijuana", "MX") == "MXHOULIN1TIJ")
    }

    @Test func hyphenatedNamesAreOneWordAndDigitsCount() throws {
        #expect(try mid("Rawles-Aden Corp.", "400 King Road", "Lahore", "PK") == "PKRAWCOR400LAH")
        #expect(try mid("20th Century Fox", "10201 Pico Blvd", "Mexicali", "MX") == "MX20TCEN1020MEX")
    }

    @Test func theLargestStreetNumberGivesItsFirstFourDigits() throws {
        #expect(try mid("Ozrock", "92, Alice Springs Road", "Melbourne", "AU") == "AUOZR92MEL")
        #expect(try mid("Shanghai Leather Co.", "Unit 3 Building 12 Lane 1875", "Shanghai", "CN") == "CNSHALEA1875SHA")
        #expect(try mid("Shanghai Leather Co.", "12-34 56 Akasaka Road", "Tokyo", "JP") == "JPSHALEA1234TOK")
        #expect(try mid("Shanghai Leather Co.", "7 12th Street", "Tokyo", "JP") == "JPSHALEA7TOK")
        #expect(try mid("Shanghai Leather Co.", "Avenida Reforma", "Puebla", "MX") == "MXSHALEAPUE")
    }

    @Test func canadaUsesTheProvinceCode() throws {
        #expect(
            try mid("Maple Apparel Inc.", "250 Front Street West", "Toronto", "CA", province: "ON") == "XOMAPAPP250TOR")
        #expect(
            try mid("Boreal Goods", "1200 Rue Sainte-Catherine", "Montreal", "CA", province: "Québec")
                == "XQBORGOO1200MON")
        #expect(try mid("Boreal Goods", "9 Main St", "Whitehorse", "CA", province: "YT") == "XYBORGOO9WHI")
        #expect(throws: DomainError.self) { try mid("Boreal Goods", "9 Main St", "Whitehorse", "CA") }
    }

    /// The Appendix's initials examples (regulatory review, "What checks out").
    @Test func initialsAfterAWordStayTogether() throws {
        #expect(try mid("Dr. S.A. Smith", "14 Bank Street", "Dublin", "IE") == "IEDRSA14DUB")
        #expect(try mid("Shavings B L Inc.", "14 Bank Street", "Dublin", "IE") == "IESHABL14DUB")
    }

    /// Regulatory review A7: letters with diacritics are transliterated, never dropped (DOMAIN.md, MID).
    @Test func accentedLettersAreTransliteratedNotDropped() throws {
        #expect(try mid("Fábrica de Muebles Hernández", "Av. Reforma 222", "Mérida", "MX") == "MXFABDE222MER")
        #expect(try mid("Industrias Peñoles", "Blvd. Laguna 3200 Ote.", "Torreón", "MX") == "MXINDPEN3200TOR")
        // Dropping Ñ left "AND", which was then skipped as the English word.
        #expect(try mid("Maquiladora Ñandú", "Calle Hidalgo 1234", "León", "MX") == "MXMAQNAN1234LEO")
        #expect(
            try mid("Boreal Goods", "1200 Rue Sainte-Catherine", "Québec", "CA", province: "QC") == "XQBORGOO1200QUE")
        #expect(try mid("Müller Textil AG", "Bahnhofstrasse 5", "Zürich", "CH") == "CHMULTEX5ZUR")
        #expect(try mid("Têxtil Paulista Ltda", "Rua Augusta 1500", "São Paulo", "BR") == "BRTEXPAU1500SAO")
        // Letters Unicode does not decompose are transliterated too.
        #expect(try mid("Øresund Straße GmbH", "Hauptstraße 12", "Köln", "DE") == "DEORESTR12KOL")
    }

    /// Regulatory review C4: a Mexican postal code on the street line is not the street number.
    @Test func aMexicanPostalCodeIsNotTheStreetNumber() throws {
        #expect(
            try mid("Textiles del Norte S.A.", "Blvd. Agua Caliente 10535, Col. Aviación, C.P. 22014", "Tijuana", "MX")
                == "MXTEXDEL1053TIJ")
        #expect(
            try mid("Textiles del Norte S.A.", "Av. Industrial 4521 CP 22444", "Tijuana", "MX") == "MXTEXDEL4521TIJ")
        #expect(
            try mid("Textiles del Norte S.A.", "Av. Industrial 4521, Código Postal 22444", "Tijuana", "MX")
                == "MXTEXDEL4521TIJ")
    }

    /// Regulatory review C4: PQ, Quebec's old abbreviation, is Quebec.
    @Test func theOldQuebecAbbreviationIsQuebec() throws {
        #expect(try mid("Boreal Goods", "9 Main St", "Montreal", "CA", province: "PQ") == "XQBORGOO9MON")
        #expect(try mid("Boreal Goods", "9 Main St", "Montreal", "CA", province: "P.Q.") == "XQBORGOO9MON")
    }

    @Test func givenMIDsAreValidated() throws {
        #expect(try MID("HKAMAPLA1145HON").rawValue == "HKAMAPLA1145HON")
        #expect(try MID("xoMapApp250Tor").rawValue == "XOMAPAPP250TOR")
        #expect(throws: DomainError.self) { try MID("CAMAPAPP250TOR") }  // Canada takes a province code
        #expect(throws: DomainError.self) { try MID("HKAMAPLA1145HONGKONG") }  // over 15
        #expect(throws: DomainError.self) { try MID("ZZAMAPLA1145HON") }  // no such country
        #expect(throws: DomainError.self) { try MID("HK AMAPLA 1145") }
    }
}
