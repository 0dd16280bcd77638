# Pester 5 tests for the PhotoBulk module. Unit tests need only PowerShell; the integration
# tests run when the photobulk binary is found (PHOTOBULK_EXE, next to the module, or on PATH)
# and PB_SAMBA_URL / PB_SAMBA_BIND / PB_SAMBA_PASSWORD / PB_SAMBA_CA name a test directory.
BeforeAll {
    $script:ModulePath = Join-Path (Split-Path -Parent $PSScriptRoot) 'PhotoBulk.psd1'
    $script:RepoRoot = Split-Path -Parent (Split-Path -Parent (Split-Path -Parent $PSScriptRoot))
    $script:FixtureDir = Join-Path $script:RepoRoot 'tests/sidecar/fixtures/module'
    Import-Module $script:ModulePath -Force

    function Get-Fixture {
        param([string]$Name, [hashtable]$Vars)
        $text = Get-Content -Raw -LiteralPath (Join-Path $script:FixtureDir $Name)
        foreach ($k in $Vars.Keys) { $text = $text.Replace('${' + $k + '}', ($Vars[$k] -replace '\\', '\\')) }
        $text | ConvertFrom-Json
    }
    function ConvertTo-Canonical {
        # JSON text with object keys sorted, so key order does not matter, and every '\' in a string
        # turned into '/': the fixtures write '${PHOTO_DIR}/a.jpg', Join-Path on Windows gives 'C:\...\a.jpg'.
        param($Value)
        if ($null -eq $Value) { return 'null' }
        if ($Value -is [string]) { return (ConvertTo-Json -InputObject ($Value.Replace('\', '/')) -Compress) }
        if ($Value -is [System.Collections.IDictionary]) {
            $parts = foreach ($k in ($Value.Keys | Sort-Object)) { '"' + $k + '":' + (ConvertTo-Canonical $Value[$k]) }
            return '{' + ($parts -join ',') + '}'
        }
        if ($Value -is [System.Management.Automation.PSCustomObject]) {
            $parts = foreach ($p in ($Value.PSObject.Properties | Sort-Object -Property Name)) { '"' + $p.Name + '":' + (ConvertTo-Canonical $p.Value) }
            return '{' + ($parts -join ',') + '}'
        }
        if ($Value -is [array] -or $Value -is [System.Collections.IList]) {
            return '[' + ((@($Value) | ForEach-Object { ConvertTo-Canonical $_ }) -join ',') + ']'
        }
        return (ConvertTo-Json -InputObject $Value -Compress)
    }
}

Describe 'Manifest' {
    It 'is valid and exports exactly the two cmdlets' {
        $m = Test-ModuleManifest -Path $script:ModulePath
        $m.ExportedFunctions.Keys | Sort-Object | Should -Be @('Get-PhotoReport', 'Set-PhotoBulk')
        $m.CompatiblePSEditions | Should -Contain 'Desktop'
        $m.CompatiblePSEditions | Should -Contain 'Core'
    }
    It 'keeps the private functions private' {
        Get-Command -Module PhotoBulk -Name 'Invoke-PhotoBulkRpc' -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }
    It 'stays under 400 lines of PowerShell' {
        $root = Split-Path -Parent $script:ModulePath
        $files = Get-ChildItem -Path $root -Recurse -Include '*.ps1', '*.psm1', '*.psd1' | Where-Object { $_.FullName -notmatch 'Tests' }
        ($files | Get-Content | Measure-Object -Line).Lines | Should -BeLessThan 400
    }
}

Describe 'Help and parameters' {
    It '<Name> has a synopsis, a description and examples' -ForEach @(@{ Name = 'Set-PhotoBulk' }, @{ Name = 'Get-PhotoReport' }) {
        $help = Get-Help $Name -Full
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Description | Should -Not -BeNullOrEmpty
        @($help.Examples.Example).Count | Should -BeGreaterOrEqual 2
    }
    It 'Set-PhotoBulk supports -WhatIf/-Confirm and binds Get-ChildItem and Get-ADUser output' {
        $cmd = Get-Command Set-PhotoBulk
        $cmd.Parameters.Keys | Should -Contain 'WhatIf'
        $cmd.Parameters.Keys | Should -Contain 'Confirm'
        $cmd.Parameters['Path'].Aliases | Should -Contain 'FullName'
        $cmd.Parameters['Identity'].Aliases | Should -Contain 'SamAccountName'
        $cmd.Parameters['Identity'].Aliases | Should -Contain 'UserPrincipalName'
        $cmd.Parameters['Credential'].ParameterType | Should -Be ([pscredential])
        $cmd.Parameters['Target'].Attributes.ValidValues | Should -Be @('ActiveDirectory', 'ExchangeOnPrem', 'ExchangeOnline')
        $cmd.Parameters['AccessToken'].ParameterType | Should -Be ([securestring])
        $cmd.Parameters['ClientCredential'].ParameterType | Should -Be ([pscredential])
    }
    It 'documents every new parameter' -ForEach @(
        @{ Command = 'Set-PhotoBulk'; Parameter = 'TenantId' }, @{ Command = 'Set-PhotoBulk'; Parameter = 'ClientCredential' }
        @{ Command = 'Set-PhotoBulk'; Parameter = 'CertificatePath' }, @{ Command = 'Set-PhotoBulk'; Parameter = 'AccessToken' }
        @{ Command = 'Set-PhotoBulk'; Parameter = 'GraphEnvironment' }, @{ Command = 'Get-PhotoReport'; Parameter = 'HtmlPath' }
        @{ Command = 'Set-PhotoBulk'; Parameter = 'UseExistingHd' }
    ) {
        (Get-Help $Command -Parameter $Parameter).Description | Should -Not -BeNullOrEmpty
    }
}

Describe 'Requests the module sends (tests/sidecar/fixtures/module)' {
    BeforeEach {
        $script:Sent = New-Object System.Collections.Generic.List[object]
        $script:Vars = @{
            PB_SAMBA_URL = 'ldaps://127.0.0.1:636'; PB_SAMBA_BIND = 'CN=Administrator,CN=Users,DC=photobulk,DC=test'
            PB_SAMBA_PASSWORD = 'Pb7-secret'; PB_SAMBA_CA = (Join-Path $TestDrive 'ca.pem')
            PHOTO_DIR = (Join-Path $TestDrive 'photos'); BACKUP_DIR = (Join-Path $TestDrive 'backups')
            GRAPH_URL = 'http://127.0.0.1:9/v1.0'; GRAPH_TOKEN = 'eyJ0eXAi.test.token'
        }
        Set-Content -LiteralPath $script:Vars.PB_SAMBA_CA -Value 'ca'
        $script:Cred = New-Object pscredential($script:Vars.PB_SAMBA_BIND, (ConvertTo-SecureString $script:Vars.PB_SAMBA_PASSWORD -AsPlainText -Force))
        Mock -ModuleName PhotoBulk Invoke-PhotoBulkRpc {
            $script:Sent.Add([pscustomobject]@{ method = $Method; params = $Params })
            if ($Method -eq 'bulk.plan') {
                $items = foreach ($i in $Params.items) {
                    $id = $i.identity
                    if (-not $id) { $id = ([IO.Path]::GetFileNameWithoutExtension($i.path) -split ' ')[0] }
                    [pscustomobject]@{ path = $i.path; identity = $id; status = 'ready'; dn = "CN=$id" }
                }
                return [pscustomobject]@{ items = @($items) }
            }
            if ($Method -eq 'bulk.run') {
                foreach ($i in $Params.items) {
                    if ($Params.targets -contains 'ExchangeOnPrem') {
                        $item = [pscustomobject]@{ path = $i.path; identity = $i.identity; target = 'ExchangeOnPrem'; status = 'ready'; hdPath = $i.path; hdSha256 = '${HD_SHA256}' }
                        & $OnNotification 'bulk/item' ([pscustomobject]@{ requestId = 1; item = $item })
                    }
                }
                return [pscustomobject]@{ summary = @{}; journal = (Join-Path $script:Vars.BACKUP_DIR 'journal.jsonl') }
            }
            [pscustomobject]@{}
        }
    }
    It 'Set-PhotoBulk by file name sends 1-set-photobulk.json' {
        $f = Get-Fixture '1-set-photobulk.json' $script:Vars
        $paths = @((Join-Path $script:Vars.PHOTO_DIR 'sidecar.00001.jpg'), (Join-Path $script:Vars.PHOTO_DIR 'sidecar.00002 new.jpg'))
        Set-PhotoBulk -Path $paths -Server $script:Vars.PB_SAMBA_URL -Credential $script:Cred -CaFile $script:Vars.PB_SAMBA_CA -BackupPath $script:Vars.BACKUP_DIR -Confirm:$false
        $want = @($f.requests | Where-Object { $_.method -notin @('initialize', 'shutdown') })
        $script:Sent.Count | Should -Be $want.Count
        for ($i = 0; $i -lt $want.Count; $i++) {
            $script:Sent[$i].method | Should -Be $want[$i].method
            ConvertTo-Canonical $script:Sent[$i].params | Should -Be (ConvertTo-Canonical $want[$i].params)
        }
    }
    It 'Set-PhotoBulk from a CSV with -Force sends 2-set-photobulk-identity-force.json' {
        $f = Get-Fixture '2-set-photobulk-identity-force.json' $script:Vars
        [pscustomobject]@{ Identity = $f.pesterIdentity; Path = $f.pesterPath } |
            Set-PhotoBulk -MatchBy UserPrincipalName -Server $script:Vars.PB_SAMBA_URL -Credential $script:Cred -CaFile $script:Vars.PB_SAMBA_CA -BackupPath $script:Vars.BACKUP_DIR -Crop Top -Force
        $want = @($f.requests | Where-Object { $_.method -notin @('initialize', 'shutdown') })
        for ($i = 0; $i -lt $want.Count; $i++) {
            ConvertTo-Canonical $script:Sent[$i].params | Should -Be (ConvertTo-Canonical $want[$i].params)
        }
    }
    It 'Get-PhotoReport sends 3-get-photoreport.json' {
        $f = Get-Fixture '3-get-photoreport.json' $script:Vars
        'sidecar.00001', 'sidecar.00002', 'nobody.here' | Get-PhotoReport -Server $script:Vars.PB_SAMBA_URL -Credential $script:Cred -CaFile $script:Vars.PB_SAMBA_CA
        $want = @($f.requests | Where-Object { $_.method -notin @('initialize', 'shutdown') })
        for ($i = 0; $i -lt $want.Count; $i++) {
            ConvertTo-Canonical $script:Sent[$i].params | Should -Be (ConvertTo-Canonical $want[$i].params)
        }
    }
    It 'Set-PhotoBulk -Target ExchangeOnline with a token sends 4-set-photobulk-exchange-online.json' {
        $f = Get-Fixture '4-set-photobulk-exchange-online.json' $script:Vars
        $paths = @((Join-Path $script:Vars.PHOTO_DIR 'seed.00001.jpg'), (Join-Path $script:Vars.PHOTO_DIR 'seed.00002 cloud.jpg'))
        $token = ConvertTo-SecureString $script:Vars.GRAPH_TOKEN -AsPlainText -Force
        Set-PhotoBulk -Path $paths -Target ExchangeOnline -AccessToken $token -GraphUrl $script:Vars.GRAPH_URL -BackupPath $script:Vars.BACKUP_DIR -Confirm:$false
        $want = @($f.requests | Where-Object { $_.method -notin @('initialize', 'shutdown') })
        $script:Sent.Count | Should -Be $want.Count
        for ($i = 0; $i -lt $want.Count; $i++) {
            ConvertTo-Canonical $script:Sent[$i].params | Should -Be (ConvertTo-Canonical $want[$i].params)
        }
    }
    It 'Set-PhotoBulk -Target ExchangeOnPrem calls Set-UserPhoto and sends 5-set-photobulk-exchange-onprem.json' {
        $photo = Join-Path $script:Vars.PHOTO_DIR 'sidecar.00001.jpg'
        $null = New-Item -ItemType Directory -Force -Path $script:Vars.PHOTO_DIR
        Set-Content -LiteralPath $photo -Value 'jpeg'
        function global:Set-UserPhoto {
            [CmdletBinding(SupportsShouldProcess = $true)]
            param($Identity, [byte[]]$PictureData)
            Write-Verbose "Set-UserPhoto $Identity ($($PictureData.Length) bytes)"
        }
        try {
            $f = Get-Fixture '5-set-photobulk-exchange-onprem.json' $script:Vars
            $results = @(Set-PhotoBulk -Path $photo -Target ExchangeOnPrem -BackupPath $script:Vars.BACKUP_DIR -Confirm:$false)
            $results[0].Status | Should -Be 'Written'
            $results[0].Target | Should -Be 'ExchangeOnPrem'
            $want = @($f.requests | Where-Object { $_.method -notin @('initialize', 'shutdown') })
            $script:Sent.Count | Should -Be $want.Count
            for ($i = 0; $i -lt $want.Count; $i++) {
                $script:Sent[$i].method | Should -Be $want[$i].method
                ConvertTo-Canonical $script:Sent[$i].params | Should -Be (ConvertTo-Canonical $want[$i].params)
            }
        }
        finally { Remove-Item -Path Function:\Set-UserPhoto -ErrorAction SilentlyContinue }
    }
    It 'Set-PhotoBulk -UseExistingHd from Get-ADUser output sends 6-set-photobulk-use-existing-hd.json' {
        $f = Get-Fixture '6-set-photobulk-use-existing-hd.json' $script:Vars
        $token = ConvertTo-SecureString $script:Vars.GRAPH_TOKEN -AsPlainText -Force
        [pscustomobject]@{ SamAccountName = 'sidecar.00003' }, [pscustomobject]@{ SamAccountName = 'sidecar.00004' } |
            Set-PhotoBulk -UseExistingHd -Server $script:Vars.PB_SAMBA_URL -Credential $script:Cred -CaFile $script:Vars.PB_SAMBA_CA -AccessToken $token -GraphUrl $script:Vars.GRAPH_URL -BackupPath $script:Vars.BACKUP_DIR -Confirm:$false
        $want = @($f.requests | Where-Object { $_.method -notin @('initialize', 'shutdown') })
        $script:Sent.Count | Should -Be $want.Count
        for ($i = 0; $i -lt $want.Count; $i++) {
            $script:Sent[$i].method | Should -Be $want[$i].method
            ConvertTo-Canonical $script:Sent[$i].params | Should -Be (ConvertTo-Canonical $want[$i].params)
        }
    }
    It 'Set-PhotoBulk -UseExistingHd -WhatIf asks for a dry run' {
        $token = ConvertTo-SecureString $script:Vars.GRAPH_TOKEN -AsPlainText -Force
        Set-PhotoBulk -UseExistingHd -Identity 'sidecar.00003' -Server 'dc1' -Credential $script:Cred -AccessToken $token -WhatIf
        ($script:Sent | Where-Object method -eq 'photo.syncHdToAd').params.dryRun | Should -BeTrue
    }
    It 'Get-PhotoReport -HtmlPath asks for the contact sheet' {
        Get-PhotoReport -Server 'dc1' -Credential $script:Cred -HtmlPath (Join-Path $TestDrive 'sheet.html')
        ($script:Sent | Where-Object method -eq 'report.run').params.htmlPath | Should -Be (Join-Path $TestDrive 'sheet.html')
    }
    It '-WhatIf plans but never runs' {
        Set-PhotoBulk -Path (Join-Path $TestDrive 'a.jpg') -Server 'dc1' -Credential $script:Cred -WhatIf
        $script:Sent.method | Should -Contain 'bulk.plan'
        $script:Sent.method | Should -Not -Contain 'bulk.run'
    }
    It 'initialize and shutdown are sent as in the fixtures' {
        $source = Get-Content -Raw (Join-Path (Split-Path -Parent $script:ModulePath) 'Private/Invoke-PhotoBulkRpc.ps1')
        $source | Should -Match "protocolVersion = 1; clientName = 'PhotoBulk'; clientVersion = '0.1.0'"
    }
}

Describe 'Against the real sidecar' {
    BeforeAll {
        $script:Exe = $env:PHOTOBULK_EXE
        if (-not $script:Exe) { $c = Get-Command photobulk -ErrorAction SilentlyContinue; if ($c) { $script:Exe = $c.Source } }
        $script:Skip = -not ($script:Exe -and $env:PB_SAMBA_URL)
        if (-not $script:Skip) { $env:PATH = (Split-Path -Parent $script:Exe) + [IO.Path]::PathSeparator + $env:PATH }
    }
    It 'reports users and refuses nobody' -Skip:$script:Skip {
        $cred = New-Object pscredential($env:PB_SAMBA_BIND, (ConvertTo-SecureString $env:PB_SAMBA_PASSWORD -AsPlainText -Force))
        $rows = @(Get-PhotoReport -Identity 'john.smith', 'nobody.here' -Server $env:PB_SAMBA_URL -Credential $cred -CaFile $env:PB_SAMBA_CA -ErrorVariable errs -ErrorAction SilentlyContinue)
        $rows.Count | Should -Be 2
        $rows[0].PSObject.TypeNames | Should -Contain 'PhotoBulk.ReportRow'
        $errs[0].FullyQualifiedErrorId | Should -Match 'PhotoBulk.user_not_found'
    }
}
