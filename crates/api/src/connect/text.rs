//! The Connect pages' words, in English and German (the session's `language`; the other
//! languages of Podero's enum are shown in English).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    De,
}

impl Lang {
    /// A session's `language`.
    pub(crate) fn from_code(code: &str) -> Lang {
        match code {
            "de" => Lang::De,
            _ => Lang::En,
        }
    }

    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }
}

pub(crate) struct Text {
    pub refused_title: &'static str,
    pub refused_body: &'static str,
    pub not_found_title: &'static str,
    pub not_found_body: &'static str,
    pub busy_title: &'static str,
    pub busy_body: &'static str,
    pub error_title: &'static str,
    pub error_body: &'static str,
    pub bad_form_title: &'static str,
    pub bad_form_body: &'static str,
    pub step: &'static str,
    pub of: &'static str,
    pub brand_title: &'static str,
    pub relink_title: &'static str,
    pub brand_intro: &'static str,
    pub relink_intro: &'static str,
    pub brand_legend: &'static str,
    pub other_brand: &'static str,
    pub sandbox_brand: &'static str,
    pub sandbox_brand_note: &'static str,
    pub continue_button: &'static str,
    pub cancel_button: &'static str,
    pub expires_note: &'static str,
    pub login_title: &'static str,
    pub login_intro: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub allow_button: &'static str,
    pub deny_button: &'static str,
    pub vehicles_title: &'static str,
    pub vehicles_intro: &'static str,
    pub vehicles_legend: &'static str,
    pub already_connected: &'static str,
    pub connect_button: &'static str,
    pub nothing_chosen: &'static str,
    pub no_cloud_title: &'static str,
    pub no_cloud_body: &'static str,
}

const EN: Text = Text {
    refused_title: "Request refused",
    refused_body: "This form was sent from another site or an old page. Open the link your energy \
                   provider gave you and try again there.",
    not_found_title: "Link not found",
    not_found_body: "This link is unknown, has expired or has already been used. Ask your energy \
                     provider for a new one.",
    busy_title: "Please try again",
    busy_body: "The service is busy. Please try again in a moment.",
    error_title: "Something went wrong",
    error_body: "Please try again in a moment.",
    bad_form_title: "Please choose again",
    bad_form_body: "The form was not understood. Go back and choose again.",
    step: "Step",
    of: "of",
    brand_title: "Connect your car",
    relink_title: "Reconnect your car",
    brand_intro: "Your energy provider offers smart charging: your car charges when electricity \
                  is cheapest and is ready by the time you set. Choose your car's brand; you then \
                  sign in at its connected-car service and choose which cars to connect.",
    relink_intro: "Smart charging lost access to your car. Sign in at its connected-car service \
                   again to reconnect it.",
    brand_legend: "Your car's brand",
    other_brand: "Another brand",
    sandbox_brand: "Sandbox car (simulated)",
    sandbox_brand_note: "A simulated car for trying smart charging; no real login.",
    continue_button: "Continue",
    cancel_button: "Cancel",
    expires_note: "This link can be used once, until",
    login_title: "Sign in to Sandbox Motors",
    login_intro: "This is the simulated login of Voltplan's sandbox: any e-mail address and \
                  password work. Allowing access shares the sandbox cars of that address.",
    email: "E-mail",
    password: "Password",
    allow_button: "Sign in and allow access",
    deny_button: "Deny",
    vehicles_title: "Choose your cars",
    vehicles_intro: "Your account shares these cars. Choose the ones smart charging should \
                     manage.",
    vehicles_legend: "Cars",
    already_connected: "already connected",
    connect_button: "Connect",
    nothing_chosen: "Choose at least one car, or cancel.",
    no_cloud_title: "Not available",
    no_cloud_body: "No car brand can be connected through this server yet. Please contact your \
                    energy provider.",
};

const DE: Text = Text {
    refused_title: "Anfrage abgelehnt",
    refused_body: "Dieses Formular kam von einer anderen Website oder einer veralteten Seite. \
                   Öffnen Sie den Link Ihres Energieversorgers und versuchen Sie es dort erneut.",
    not_found_title: "Link nicht gefunden",
    not_found_body: "Dieser Link ist unbekannt, abgelaufen oder wurde bereits verwendet. Bitten \
                     Sie Ihren Energieversorger um einen neuen.",
    busy_title: "Bitte versuchen Sie es erneut",
    busy_body: "Der Dienst ist ausgelastet. Bitte versuchen Sie es gleich noch einmal.",
    error_title: "Etwas ist schiefgelaufen",
    error_body: "Bitte versuchen Sie es gleich noch einmal.",
    bad_form_title: "Bitte erneut wählen",
    bad_form_body: "Das Formular wurde nicht verstanden. Gehen Sie zurück und wählen Sie erneut.",
    step: "Schritt",
    of: "von",
    brand_title: "Auto verbinden",
    relink_title: "Auto neu verbinden",
    brand_intro: "Ihr Energieversorger bietet intelligentes Laden: Ihr Auto lädt, wenn Strom am \
                  günstigsten ist, und ist zur gewünschten Zeit bereit. Wählen Sie die Marke \
                  Ihres Autos; danach melden Sie sich bei deren Online-Dienst an und wählen, \
                  welche Autos verbunden werden.",
    relink_intro: "Intelligentes Laden hat den Zugriff auf Ihr Auto verloren. Melden Sie sich \
                   erneut beim Online-Dienst Ihres Autos an, um es wieder zu verbinden.",
    brand_legend: "Marke Ihres Autos",
    other_brand: "Andere Marke",
    sandbox_brand: "Sandbox-Auto (simuliert)",
    sandbox_brand_note: "Ein simuliertes Auto zum Ausprobieren; keine echte Anmeldung.",
    continue_button: "Weiter",
    cancel_button: "Abbrechen",
    expires_note: "Dieser Link ist einmal verwendbar, bis",
    login_title: "Bei Sandbox Motors anmelden",
    login_intro: "Dies ist die simulierte Anmeldung der Voltplan-Sandbox: jede E-Mail-Adresse \
                  und jedes Passwort funktionieren. Mit der Freigabe teilen Sie die \
                  Sandbox-Autos dieser Adresse.",
    email: "E-Mail",
    password: "Passwort",
    allow_button: "Anmelden und Zugriff erlauben",
    deny_button: "Ablehnen",
    vehicles_title: "Autos auswählen",
    vehicles_intro: "Ihr Konto teilt diese Autos. Wählen Sie, welche intelligent geladen werden \
                     sollen.",
    vehicles_legend: "Autos",
    already_connected: "bereits verbunden",
    connect_button: "Verbinden",
    nothing_chosen: "Wählen Sie mindestens ein Auto oder brechen Sie ab.",
    no_cloud_title: "Nicht verfügbar",
    no_cloud_body: "Über diesen Server kann noch keine Automarke verbunden werden. Bitte wenden \
                    Sie sich an Ihren Energieversorger.",
};

impl Text {
    pub(crate) fn of(lang: Lang) -> &'static Text {
        match lang {
            Lang::En => &EN,
            Lang::De => &DE,
        }
    }
}
